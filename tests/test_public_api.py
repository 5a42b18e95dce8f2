"""The names each module of the package gives stay importable from it.

``PUBLIC`` lists, per module, the names it gave before its modules were split by the questions they
answer (its ``__all__``, and every other name of this package it held: a class, a constant, an
exception a user may have imported next to the hook), plus the names added since. Restructuring may
move a definition, not a name: the old module re-exports it. A name leaves a module only through
``DEPRECATED`` (it still resolves, warning), and only on purpose: this list is edited by hand, never
rebuilt from the tree it checks.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from typing import NamedTuple

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

import airflow_provider_fuse


class Names(NamedTuple):
    """A module's names: ``exported`` are in its ``__all__`` (``import *`` gives them), ``also``
    import from it by name."""

    exported: str
    also: str


PUBLIC: dict[str, Names] = {
    "airflow_provider_fuse": Names(
        "__version__",
        "",
    ),
    "airflow_provider_fuse.answers": Names(
        "describe_body parse_answer",
        "read_xml XmlRefused",
    ),
    "airflow_provider_fuse.calling_hours": Names(
        "calling_window CallingHours country_time_zones HORIZON_DAYS ON_UNKNOWN_TIME_ZONE time_zones Window",
        "FuseValidationError",
    ),
    "airflow_provider_fuse.calls": Names(
        "CallDetails CallEvent CallStatus NUMBER_FIELDS TERMINAL_STATUSES",
        "FuseInvalidResponseError redact",
    ),
    "airflow_provider_fuse.decisions": Names(
        """
            answer_of Answer APPROVAL APPROVE Ask ask NOT_QUEUED QUESTION_KEY QUEUED Question REJECT STOP
            UNKNOWN_OUTCOME
        """,
        "",
    ),
    "airflow_provider_fuse.destinations": Names(
        "ACCEPTED_FORMS DESTINATION DESTINATION_FORMAT destination_number KEYED_DESTINATION_FORMAT",
        "",
    ),
    "airflow_provider_fuse.exceptions": Names(
        """
            end_sentence FuseApiError FuseAuthenticationError FuseBadRequestError FuseConnectionLostError
            FuseCsvError FuseDeletedError FuseError FuseInvalidResponseError FuseMethodNotAllowedError
            FuseNotFoundError FuseNotSentError FuseOtherRejectionError FusePermissionError FuseRedirectError
            FuseRejectedError FuseRequestError FuseServerError FuseTooManyRequestsError
            FuseUnknownOutcomeError FuseValidationError MAY_HAVE_QUEUED nothing_queued Outcome redact
            REJECTION_BY_STATUS rejection_class without_may_have_queued
        """,
        "",
    ),
    "airflow_provider_fuse.fields": Names(
        """
            CallParameterValue QUEUE_FIELD_NAMES QueueFields TimestampLike to_call_parameters to_phone_number
            to_positive_id to_unix_timestamp
        """,
        "FuseValidationError MAX_ATTEMPTS_RANGE REATTEMPT_WAIT_RANGE TIMESTAMP_RANGE",
    ),
    "airflow_provider_fuse.get_provider_info": Names(
        "CONN_FIELDS get_provider_info UI_FIELD_BEHAVIOUR",
        "CONFIG",
    ),
    "airflow_provider_fuse.guard": Names(
        """
            AlreadyQueued BulkQueueLedger CampaignRecord Fingerprint GuardError LEDGER_KEY ListChanged Plan
            QUEUE_CALL_KEY QueueCallLedger Record seal StateStore SuppressionListChanged
            UnknownOutcomeRecorded
        """,
        "NEVER_EXPIRE QUEUED SALT_BYTES SCRYPT_N SCRYPT_P SCRYPT_R SENDING VERSION",
    ),
    "airflow_provider_fuse.hooks": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.hooks.classify": Names(
        """
            Answer ANSWER_HTTP_VERSIONS asking_again_can_help calls_queued cause classify_answer
            classify_network_error failure head_refused head_within_bounds HeadTooLarge OtherHttpVersion
            queued_call_id version_refused
        """,
        "",
    ),
    "airflow_provider_fuse.hooks.client_logs": Names(
        "keep_answers_out_of_client_logs",
        "",
    ),
    "airflow_provider_fuse.hooks.connection": Names(
        """
            CONN_FIELDS CONN_TYPE connection_form_widgets DEFAULT_BASE_URL DEFAULT_CONN_NAME HOOK_NAME
            is_loopback KNOWN_EXTRAS request_headers UI_FIELD_BEHAVIOUR ui_field_behaviour
        """,
        "",
    ),
    "airflow_provider_fuse.hooks.fuse": Names(
        """
            asking_again_can_help base_url CallDetails CallStatus classify_answer classify_network_error
            ConnectionSettings CsvSource DEFAULT_BASE_URL DEFAULT_TIMEOUT DEFAULT_TOTAL_TIMEOUT FuseHook
            KNOWN_EXTRAS MAX_ANSWER_BYTES MAX_ANSWER_HEAD_BYTES MAX_ANSWER_HEADERS MAX_CALL_ID_CHARS
            MAX_CALLS_QUEUED MAX_CONNECT_RETRIES MAX_INTERIM_HEAD_BYTES MAX_RETRY_BACKOFF MAX_RETRY_DELAY
            MAX_TIMEOUT NO_RECEIVER_STATUSES parse_answer PROBE_CONNECT_TIMEOUT PROBE_DEADLINE
            PROBE_READ_BYTES probe_results_receiver ProbeAnswer RECEIVER_NOT_CONFIGURED RECEIVER_REFUSES_TOKEN
            RECEIVER_SETUP_HINT UPLOAD_BLOCK_SIZE
        """,
        """
            FuseApiError FuseAuthenticationError FuseConnectionLostError FuseCsvError FuseError
            FuseInvalidResponseError FuseNotSentError FuseRedirectError FuseRejectedError FuseRequestError
            FuseServerError FuseUnknownOutcomeError FuseValidationError NOT_CONFIGURED_DETAIL Outcome
            QueueFields redact REFUSED_DETAIL rejection_class to_call_parameters to_phone_number
            to_positive_id
        """,
    ),
    "airflow_provider_fuse.hooks.httpx_client": Names(
        "check_async_proxy new_client send",
        "",
    ),
    "airflow_provider_fuse.hooks.limits": Names(
        """
            DEFAULT_TIMEOUT DEFAULT_TOTAL_TIMEOUT is_connect_retries is_finite_number is_retry_backoff
            MAX_ANSWER_BYTES MAX_ANSWER_HEAD_BYTES MAX_ANSWER_HEADERS MAX_CALL_ID_CHARS MAX_CALLS_QUEUED
            MAX_CONNECT_RETRIES MAX_INTERIM_HEAD_BYTES MAX_RETRY_BACKOFF MAX_RETRY_DELAY MAX_TIMEOUT
            PROBE_CONNECT_TIMEOUT PROBE_DEADLINE PROBE_READ_BYTES shown_value UPLOAD_BLOCK_SIZE
        """,
        "",
    ),
    "airflow_provider_fuse.hooks.receiver_probe": Names(
        """
            NO_RECEIVER_STATUSES PROBE_CONNECT_TIMEOUT PROBE_DEADLINE PROBE_READ_BYTES probe_results_receiver
            ProbeAnswer RECEIVER_NOT_CONFIGURED RECEIVER_REFUSES_TOKEN RECEIVER_SETUP_HINT
        """,
        "",
    ),
    "airflow_provider_fuse.hooks.requests_client": Names(
        """
            check_csv CsvSource DeadlinePassed FuseAdapter new_session read_answer request_and_read rewinder
            send Watchdog
        """,
        "",
    ),
    "airflow_provider_fuse.hooks.results": Names(
        "FuseResultsHook",
        "",
    ),
    "airflow_provider_fuse.hooks.settings": Names(
        "base_url ConnectionSettings",
        "",
    ),
    "airflow_provider_fuse.links": Names(
        "CALL_OPERATORS CAMPAIGNS_PATH FuseCallLink FuseCampaignLink RESULTS_SENSOR view_path",
        "",
    ),
    "airflow_provider_fuse.masking": Names(
        "mask_personal_data mask_url redact redact_value Sealed shape shown_call_parameters shown_keys "
        "shown_suppression_list shown_url",
        "HIDDEN RENDERING sealed_call_parameters sealed_phone_number sealed_result_url "
        "sealed_suppression_list",
    ),
    "airflow_provider_fuse.notifications": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.notifications.fuse": Names(
        "FuseNotifier send_fuse_notification",
        "",
    ),
    "airflow_provider_fuse.notifications.occurrences": Names(
        "CallRecords Event EVENTS Occurrence RECORD_PREFIX",
        "",
    ),
    "airflow_provider_fuse.operators": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.operators.base": Names(
        "BaseFuseOperator checked_hook_params HOOK_PARAMS Log where",
        "FuseValidationError MAX_CONNECT_RETRIES MAX_RETRY_BACKOFF",
    ),
    "airflow_provider_fuse.operators.bulk_queue": Names(
        "dialing_window_end FuseBulkQueueOperator PLAN_XCOM_KEY probe_receiver RESULTS_XCOM_KEY",
        """
            bulk_queue_failure FuseError FuseValidationError guard_refusal nothing_queued nothing_sent
            request_fields RESEND_CONF_KEY rows_of shown_url where
        """,
    ),
    "airflow_provider_fuse.operators.cancel_calls": Names(
        "FuseCancelCallsOperator",
        """
            FuseError FuseValidationError nothing_sent ON_UNKNOWN_OUTCOME task_failure to_positive_id where
        """,
    ),
    "airflow_provider_fuse.operators.contact_list": Names(
        "check_duplicates describe_repeats ON_DUPLICATE_DESTINATIONS parts preflight snapshot spool",
        "FuseValidationError",
    ),
    "airflow_provider_fuse.operators.dialing_plan": Names(
        """
            check_on_unknown_time_zone check_suppression_source checked_calling_hours describe_plan
            describe_window part_fields part_windows plan_content Removals Router
        """,
        "FuseValidationError ON_UNKNOWN_TIME_ZONE REPORTED_ROWS",
    ),
    "airflow_provider_fuse.operators.fuse": Names(
        """
            FuseBulkQueueOperator FuseCancelCallsOperator FuseQueueCallOperator
            ON_DUPLICATE_DESTINATIONS ON_UNKNOWN_OUTCOME RESEND_CONF_KEY
        """,
        # Deprecated here (a warning names the owner); no longer given by ``import *``, which would
        # warn every DAG that star-imports the operators.
        "mask_personal_data task_failure",
    ),
    "airflow_provider_fuse.operators.outcomes": Names(
        """
            bulk_queue_failure NEXT_STEPS nothing_sent ON_UNKNOWN_OUTCOME rows_of task_failure timed_out
        """,
        """
            end_sentence FuseApiError FuseUnknownOutcomeError FuseValidationError without_may_have_queued
        """,
    ),
    "airflow_provider_fuse.operators.queue_call": Names(
        "FuseQueueCallOperator",
        """
            FuseError FuseValidationError guard_refusal mask_personal_data nothing_queued nothing_sent
            request_fields sealed_call_parameters sealed_phone_number task_failure where
        """,
    ),
    "airflow_provider_fuse.operators.queueing": Names(
        "BaseFuseQueueingOperator QUEUE_TEMPLATE_FIELDS request_fields",
        """
            FuseValidationError nothing_sent ON_UNKNOWN_OUTCOME QueueFields resend_allowed sealed_result_url
            staleness state_store timed_out to_positive_id
        """,
    ),
    "airflow_provider_fuse.operators.questions": Names(
        "approval_text call_approval_text CallShown ListShown PartUnknown task_name unknown_outcome_text",
        "NOT_QUEUED QUEUED STOP",
    ),
    "airflow_provider_fuse.operators.reruns": Names(
        "guard_refusal resend_allowed RESEND_CONF_KEY state_store",
        "",
    ),
    "airflow_provider_fuse.operators.staleness": Names(
        "staleness",
        "",
    ),
    "airflow_provider_fuse.operators.task_failures": Names(
        """
            bulk_queue_failure NEXT_STEPS nothing_sent ON_UNKNOWN_OUTCOME rows_of task_failure timed_out
        """,
        "",
    ),
    "airflow_provider_fuse.preflight": Names(
        """
            ACCEPTED_FORMS CsvPart CsvSummary DEFAULT_BLOCK_SIZE DESTINATION DESTINATION_FORMAT
            destination_number MAX_ROW_BYTES preflight_csv write_csv_parts
        """,
        "FuseCsvError redact REPORTED_ROWS",
    ),
    "airflow_provider_fuse.redaction": Names(
        "HIDDEN redact",
        "",
    ),
    "airflow_provider_fuse.results": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.results.callbacks": Names(
        "CALL_DETAILS_NUMBERS CallbackError FIELD_NAMES MAX_BODY_BYTES read_callback",
        """
            CallDetails FuseInvalidResponseError MAX_FIELDS MAX_NAME_DEPTH read_xml XmlDoctypeRefused
            XmlRefused XmlTooDeep
        """,
    ),
    "airflow_provider_fuse.results.campaign": Names(
        """
            bulk_campaigns Campaign CampaignSummary counted_as describe dialing_window_end is_sent_list
            MAX_COUNT
            MAX_TIMESTAMP NAMED_STATUSES RESULTS_XCOM_KEY sent_records SentList summarize SUMMARY_KEYS
            SUMMARY_XCOM_KEY UnreadableRecord waiting_is_over
        """,
        "",
    ),
    "airflow_provider_fuse.results.cli": Names(
        "build_app build_parser DEFAULT_PORT main",
        "",
    ),
    "airflow_provider_fuse.results.config": Names(
        """
            check_base_url check_table_name CONFIG DEFAULT_CONN_ID DEFAULT_TABLE is_loopback ResultsConfig
            ResultsConfigError ResultsConfigUnreadable SECTION
        """,
        "DEFAULT_TOKEN_LIFETIME RESULTS_PATH",
    ),
    "airflow_provider_fuse.results.counting": Names(
        "DaemonThreadExecutor DEFAULT_COUNT_TIMEOUT LAST_COUNT_SECONDS",
        "",
    ),
    "airflow_provider_fuse.results.diagnosis": Names(
        """
            describe_receiver_answer DIAGNOSE_AFTER_POLLS DIAGNOSE_EVERY DIAGNOSIS_SECONDS receiver_diagnosis
        """,
        "",
    ),
    "airflow_provider_fuse.results.plugin": Names(
        "FuseResultsPlugin TASK_INSTANCE_VIEW URL_PREFIX",
        "",
    ),
    "airflow_provider_fuse.results.receiver": Names(
        """
            BODY_TIMEOUT CONFIG_RETRY_INTERVAL create_app MASK mask_path MaskTokenMiddleware
            MAX_WAITING_STORES REFUSAL_LOG_INTERVAL RefusalLog STORE_TIMEOUT TOKEN_SCOPE_KEY
        """,
        """
            CallbackError MAX_BODY_BYTES NOT_CONFIGURED_DETAIL read_callback ReceiverBusy REFUSED_DETAIL
            ResultsConfig ResultsConfigError ResultsStoreError ResultsTable STORE_THREADS Stored TokenError
            TokenExpired UploadPart verify
        """,
    ),
    "airflow_provider_fuse.results.table": Names(
        """
            canonical_destination COLUMNS CONNECT_TIMEOUT_SECONDS DATABASE_WAIT_SECONDS delivery_key
            PART_COLUMNS PartCount ResultsStoreError ResultsTable SLOT_TRIES SQLITE_BUSY_TIMEOUT_MS Stored
            WATCHDOG_GRACE_SECONDS
        """,
        "check_table_name destination_number redact SUMMARY_STATUSES",
    ),
    "airflow_provider_fuse.results.tokens": Names(
        """
            as_dict check_key is_campaign_id MIN_KEY_LENGTH new_campaign NOT_CONFIGURED_DETAIL REFUSED_DETAIL
            sign TokenError TokenExpired TokenTooLong UploadPart verify
        """,
        "MAX_TOKEN_LENGTH",
    ),
    "airflow_provider_fuse.results.view": Names(
        """
            CallView CampaignView MAX_BUCKETS nothing_to_show PartRow Plot REFRESH_SECONDS SHOWN_WORDS
            bucket_seconds_for shown_word unreadable_page
        """,
        "",
    ),
    "airflow_provider_fuse.results.view_app": Names(
        "create_view_app read_view",
        "",
    ),
    "airflow_provider_fuse.safe_xml": Names(
        """
            MAX_XML_BYTES MAX_XML_DEPTH read_xml xml_value XmlDoctypeRefused XmlMalformed XmlRefused
            XmlTooDeep XmlTooLarge
        """,
        "",
    ),
    "airflow_provider_fuse.sandbox": Names(
        """
            Call create_app Fault FuseSandbox FuseService RequestRecord SandboxAssumptions SandboxCallEvent
            SandboxCallStatus SandboxClock SandboxSettings Upload
        """,
        "require_sandbox_extra",
    ),
    "airflow_provider_fuse.sandbox.app": Names(
        "create_app",
        """
            Answer BodyTooLarge Call call_dict ConnectionDropped DEFAULT_EMAIL DEFAULT_MAX_UPLOAD_BYTES
            DroppedResponse error_response Fault fault_from_dict fault_response fuse_response FuseService
            Submission Upload upload_dict wants_xml
        """,
    ),
    "airflow_provider_fuse.sandbox.assumptions": Names(
        "SandboxAssumptions",
        "",
    ),
    "airflow_provider_fuse.sandbox.cli": Names(
        "build_parser main",
        "require_sandbox_extra SandboxAssumptions SandboxExtraMissing",
    ),
    "airflow_provider_fuse.sandbox.clock": Names(
        "SandboxClock",
        "",
    ),
    "airflow_provider_fuse.sandbox.faults": Names(
        "ConnectionDropped DroppedResponse fault_response FaultQueue install_log_filter",
        "error_response",
    ),
    "airflow_provider_fuse.sandbox.lifecycle": Names(
        """
            answers CallbackDelivery is_loopback_url NO_ANSWER_SECONDS RING_SECONDS Simulator TALK_SECONDS
        """,
        "Call SandboxCallEvent SandboxCallStatus",
    ),
    "airflow_provider_fuse.sandbox.models": Names(
        "Call ENDPOINTS Fault FaultBody RequestRecord SandboxCallEvent SandboxCallStatus Upload",
        "",
    ),
    "airflow_provider_fuse.sandbox.render": Names(
        "call_details error_response fuse_response to_xml wants_xml",
        "JSON_TYPE to_json XML_TYPE",
    ),
    "airflow_provider_fuse.sandbox.requirements": Names(
        "INSTALL_HINT missing_requirements require_sandbox_extra SandboxExtraMissing",
        "",
    ),
    "airflow_provider_fuse.sandbox.server": Names(
        "FuseSandbox",
        """
            Call create_app DEFAULT_EMAIL DEFAULT_MAX_UPLOAD_BYTES Fault FuseService install_log_filter
            RequestRecord SandboxAssumptions Upload
        """,
    ),
    "airflow_provider_fuse.sandbox.service": Names(
        "Answer DEFAULT_EMAIL DEFAULT_MAX_UPLOAD_BYTES FuseService NO_DEPLOYMENT Submission",
        """
            BAD_AUTH bad_rows_message Call call_details CallbackDelivery count_rows DELETED_DEPLOYMENT
            FaultQueue NO_CALL parse_call_parameters parse_destination parse_id QueueParams read_contacts
            SandboxAssumptions SandboxCallStatus SandboxClock SandboxError Simulator Store validate_params
        """,
    ),
    "airflow_provider_fuse.sandbox.settings": Names(
        "DEFAULT_EMAIL DEFAULT_MAX_UPLOAD_BYTES SandboxOptions SandboxSettings",
        "",
    ),
    "airflow_provider_fuse.sandbox.store": Names(
        "Store",
        "Call RequestRecord SandboxCallEvent Upload",
    ),
    "airflow_provider_fuse.sandbox.validation": Names(
        """
            bad_rows_message count_rows CsvContacts parse_call_parameters parse_destination parse_id
            QueueParams read_contacts REATTEMPT_WAIT_REQUIRED SandboxError validate_params
        """,
        "",
    ),
    "airflow_provider_fuse.sensors": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.sensors.call_status": Names(
        "FuseCallStatusSensor ON_FAILURE_STATUS",
        "",
    ),
    "airflow_provider_fuse.sensors.campaign_results": Names(
        "bulk_campaigns FuseCampaignResultsSensor NAMED_STATUSES summarize SUMMARY_KEYS",
        "Campaign MAX_COUNT MAX_TIMESTAMP SUMMARY_XCOM_KEY",
    ),
    "airflow_provider_fuse.sensors.fuse": Names(
        "FuseCallStatusSensor FuseCampaignResultsSensor ON_FAILURE_STATUS",
        "FuseError FuseValidationError TERMINAL_STATUSES",
    ),
    "airflow_provider_fuse.snapshot": Names(
        "copy_regular_file open_regular_file refuse_irregular",
        "FuseCsvError",
    ),
    "airflow_provider_fuse.suppression": Names(
        """
            PARAMETER read_suppression_list suppression_number SuppressionList SuppressionQuery
            SuppressionSource
        """,
        "ACCEPTED_SPELLINGS",
    ),
    "airflow_provider_fuse.triggers": Names(
        "",
        "",
    ),
    "airflow_provider_fuse.triggers.campaign_results": Names(
        """
            DaemonThreadExecutor DEFAULT_COUNT_TIMEOUT describe_receiver_answer DIAGNOSE_AFTER_POLLS
            DIAGNOSE_EVERY FuseCampaignResultsTrigger receiver_diagnosis waiting_is_over
        """,
        "DIAGNOSIS_SECONDS LAST_COUNT_SECONDS",
    ),
    "airflow_provider_fuse.triggers.fuse": Names(
        "asking_again_can_help FuseCallStatusTrigger FuseCampaignResultsTrigger",
        "FuseError FuseHook",
    ),
}

#: Names that still resolve, with a warning of this category, from a module that no longer owns them.
DEPRECATED: dict[tuple[str, str], type[Warning]] = {
    ("airflow_provider_fuse.operators.fuse", "mask_personal_data"): AirflowProviderDeprecationWarning,
    ("airflow_provider_fuse.operators.fuse", "task_failure"): AirflowProviderDeprecationWarning,
    ("airflow_provider_fuse.sandbox", "CallStatus"): DeprecationWarning,
    ("airflow_provider_fuse.sandbox", "CallEvent"): DeprecationWarning,
}
#: Modules whose import warns, the whole module being a compatibility name for another.
DEPRECATED_MODULES = {"airflow_provider_fuse.operators.outcomes": AirflowProviderDeprecationWarning}


def _import(name: str) -> object:
    category = DEPRECATED_MODULES.get(name)
    if category is None:
        return importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category)
        return importlib.import_module(name)


def _public_modules() -> set[str]:
    found = {airflow_provider_fuse.__name__}
    for module in pkgutil.walk_packages(airflow_provider_fuse.__path__, f"{airflow_provider_fuse.__name__}."):
        if not any(part.startswith("_") for part in module.name.split(".")):
            found.add(module.name)
    return found


def test_every_public_module_is_listed():
    assert _public_modules() - set(PUBLIC) == set()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_name_a_module_gave_still_imports_from_it(name):
    module = _import(name)
    names = PUBLIC[name].exported.split() + PUBLIC[name].also.split()
    quiet = [n for n in names if (name, n) not in DEPRECATED]
    assert [n for n in quiet if not hasattr(module, n)] == []


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_import_star_still_gives_what_it_gave(name):
    module = _import(name)
    assert set(PUBLIC[name].exported.split()) - set(getattr(module, "__all__", ())) == set()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_name_in_all_resolves(name):
    module = _import(name)
    for exported in getattr(module, "__all__", ()):
        category = DEPRECATED.get((name, exported))
        if category is None:
            assert hasattr(module, exported), exported
        else:
            with pytest.warns(category):
                assert hasattr(module, exported), exported


@pytest.mark.parametrize(("name", "attribute"), sorted(DEPRECATED))
def test_a_deprecated_name_still_resolves_with_its_warning(name, attribute):
    module = _import(name)
    with pytest.warns(DEPRECATED[(name, attribute)]):
        getattr(module, attribute)
