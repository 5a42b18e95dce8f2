"""SandboxSettings: one value for what a sandbox is, taken whole or as keywords."""

from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_fuse.sandbox import FuseSandbox, FuseService, SandboxSettings, create_app
from airflow_provider_fuse.sandbox.settings import SandboxOptions


def test_the_keywords_are_exactly_the_settings_fields():
    fields = {field.name for field in dataclasses.fields(SandboxSettings)}
    assert set(SandboxOptions.__annotations__) == fields


def test_settings_and_keywords_build_the_same_sandbox():
    whole = FuseSandbox(SandboxSettings(email="me@example.com", developer_key="key", time_scale=60.0))
    keywords = FuseSandbox(email="me@example.com", developer_key="key", time_scale=60.0)
    assert whole.settings == keywords.settings


def test_settings_and_keywords_together_are_refused():
    with pytest.raises(TypeError, match="not both"):
        FuseSandbox(SandboxSettings(), time_scale=60.0)
    with pytest.raises(TypeError, match="not both"):
        create_app(settings=SandboxSettings(), time_scale=60.0)


def test_a_ready_service_takes_no_settings_beside_it():
    with pytest.raises(TypeError, match="its own settings"):
        create_app(FuseService(), time_scale=60.0)


def test_deployments_are_kept_as_a_tuple_of_int_pairs():
    settings = SandboxSettings(deployments=[("101", "202")], deleted_deployments={(1, 2)})
    assert settings.deployments == ((101, 202),)
    assert settings.deleted_deployments == ((1, 2),)
    hash(settings)  # a value


def test_a_service_without_a_developer_key_makes_one_and_keeps_it_in_its_settings():
    service = FuseService(SandboxSettings())
    assert service.developer_key
    assert service.settings.developer_key == service.developer_key
