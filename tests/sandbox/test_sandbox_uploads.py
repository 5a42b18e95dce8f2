"""Every bulk_queue upload is recorded exactly as received, and the inspection API shows it."""

from __future__ import annotations

import hashlib

import requests


def test_upload_is_recorded_byte_identical(fuse, sandbox):
    data = b'destination,name\r\n6175551234,Zo\xc3\xab\r\n16175551235,"Smith, J"\r\n'
    fuse.bulk_queue(data, filename="march.csv", max_attempts="2", reattempt_wait="300", is_pci="0")
    (upload,) = sandbox.uploads()
    assert upload.csv == data
    assert upload.filename == "march.csv"
    assert upload.content_type == "text/csv"
    assert upload.fields == {"max_attempts": "2", "reattempt_wait": "300", "is_pci": "0"}
    assert (upload.application_id, upload.deployment_id) == (101, 202)
    assert upload.rows == 2
    assert upload.calls_queued == 2
    assert upload.status_code == 200
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_refused_upload_is_recorded_with_its_status_and_nothing_queued(fuse, sandbox):
    fuse.bulk_queue("destination\n6175551234\n6175551235\n", max_attempts="4")
    (upload,) = sandbox.uploads()
    assert upload.status_code == 400
    assert upload.calls_queued is None
    assert upload.rows == 2


def test_upload_to_non_numeric_ids_is_recorded_without_ids(fuse, sandbox):
    fuse.bulk_queue(app="abc")
    (upload,) = sandbox.uploads()
    assert (upload.application_id, upload.deployment_id, upload.status_code) == (None, 202, 400)


def test_inspection_uploads_give_size_and_hash_and_csv_on_request(fuse, sandbox):
    data = "destination\n6175551234\n"
    fuse.bulk_queue(data, max_attempts="1")
    plain = requests.get(f"{sandbox.root_url}/_sandbox/uploads", timeout=5).json()
    assert plain[0]["csv_size"] == len(data)
    assert plain[0]["csv_sha256"] == hashlib.sha256(data.encode()).hexdigest()
    assert plain[0]["fields"] == {"max_attempts": "1"}
    assert "csv" not in plain[0]
    full = requests.get(f"{sandbox.root_url}/_sandbox/uploads?include_csv=1", timeout=5).json()
    assert full[0]["csv"] == data


def test_inspection_calls_filter_by_status(fuse, sandbox):
    future = str(int(sandbox.now()) + 86400)
    fuse.bulk_queue("destination\n6175551234\n6175551235\n", start_timestamp=future)
    queued = requests.get(f"{sandbox.root_url}/_sandbox/calls?status=queued", timeout=5).json()
    assert [c["destination"] for c in queued] == ["6175551234", "6175551235"]
    assert requests.get(f"{sandbox.root_url}/_sandbox/calls?status=completed", timeout=5).json() == []


def test_inspection_requests_and_reset(fuse, sandbox):
    fuse.bulk_queue()
    logged = requests.get(f"{sandbox.root_url}/_sandbox/requests", timeout=5).json()
    assert [(r["method"], r["status_code"]) for r in logged] == [("POST", 200)]
    assert requests.post(f"{sandbox.root_url}/_sandbox/reset", timeout=5).status_code == 204
    assert sandbox.uploads() == []
    assert sandbox.calls() == []
    assert sandbox.requests() == []


def test_inspection_adds_deployments(fuse, sandbox):
    response = requests.post(
        f"{sandbox.root_url}/_sandbox/deployments", json={"application_id": 7, "deployment_id": 8}, timeout=5
    )
    assert response.status_code == 200
    assert fuse.bulk_queue(app=7, dep=8).status_code == 200
    requests.post(
        f"{sandbox.root_url}/_sandbox/deployments",
        json={"application_id": 7, "deployment_id": 8, "deleted": True},
        timeout=5,
    )
    assert fuse.bulk_queue(app=7, dep=8).status_code == 409


def test_inspection_info_describes_the_sandbox(sandbox):
    info = requests.get(f"{sandbox.root_url}/_sandbox/info", timeout=5).json()
    assert info["deployments"] == [[101, 202]]
    assert info["assumptions"]["bad_rows"] == "reject"
    assert "developer_key" not in info


def test_connection_helpers_point_at_the_sandbox(sandbox):
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/api"
    assert sandbox.email == "sandbox@example.com"
    assert sandbox.connection_uri() == (
        f"fuse://http://sandbox%40example.com:{sandbox.developer_key}@127.0.0.1:{sandbox.port}/api"
    )
    assert sandbox.connection_json() == (
        f'{{"conn_type": "fuse", "login": "sandbox@example.com", "password": "{sandbox.developer_key}",'
        f' "host": "http://127.0.0.1:{sandbox.port}/api"}}'
    )


def test_connection_uri_quotes_login_and_key(make_client):
    sandbox = make_client(email="a+b@example.com", developer_key="k/y:z@").sandbox
    assert sandbox.connection_uri().startswith("fuse://http://a%2Bb%40example.com:k%2Fy%3Az%40@127.0.0.1:")


def test_create_app_serves_in_process_with_lifespan():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from airflow_provider_fuse.sandbox import create_app

    app = create_app(email="me@example.com", developer_key="key")
    with TestClient(app) as client:
        response = client.post(
            "/api/apps/101/202/bulk_queue",
            files={"csv": ("c.csv", b"destination\n6175551234\n")},
            auth=("me@example.com", "key"),
        )
        assert response.json() == {"calls_queued": 1}
        assert app.state.fuse.store.uploads()[0].rows == 1
