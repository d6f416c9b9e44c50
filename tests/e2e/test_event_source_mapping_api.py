"""The event source mapping API end to end through boto3: AWS's shapes per source, states, rules, messages, paging,
tags, a restart, and a deleted function.

Shapes and messages are AWS's, from shared/reference/aws-recorded (TestLambdaEventSourceMappings and TestLambdaTag in
test_lambda_api, and the create/update/duplicate cases of test_lambda_integration_{sqs,kinesis,dynamodbstreams}). No
source is polled yet, so the ARNs need no real queue or stream behind them.
"""
from __future__ import annotations

import uuid

import pytest

from conftest import PY_RUNTIME, ROLE, client_for, start_server, zip_files
from tests.support.client_errors import call_error
from tests.support.polling import wait_until

SQS_KEYS = {"BatchSize", "EventSourceArn", "EventSourceMappingArn", "FunctionArn", "FunctionResponseTypes",
            "LastModified", "MaximumBatchingWindowInSeconds", "State", "StateTransitionReason", "UUID"}
STREAM_KEYS = SQS_KEYS | {"BisectBatchOnFunctionError", "DestinationConfig", "LastProcessingResult",
                          "MaximumRecordAgeInSeconds", "MaximumRetryAttempts", "ParallelizationFactor",
                          "StartingPosition", "TumblingWindowInSeconds"}
# recorded before AWS added EventSourceMappingArn to every answer
KAFKA_KEYS = {"BatchSize", "EventSourceMappingArn", "FunctionArn", "LastModified", "LastProcessingResult",
              "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig", "SourceAccessConfigurations",
              "StartingPosition", "State", "StateTransitionReason", "Topics", "UUID"}
NOT_FOUND = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
NO_FUNCTION = (400, "InvalidParameterValueException", "Function does not exist")
BAD_FILTER = (400, "InvalidParameterValueException", "Invalid filter pattern definition.")
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:kafka-auth"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def queue_arn() -> str:
    return f"arn:aws:sqs:us-east-1:000000000000:{unique('queue-')}"


def kinesis_arn() -> str:
    return f"arn:aws:kinesis:us-east-1:000000000000:stream/{unique('stream-')}"


def dynamodb_arn() -> str:
    return f"arn:aws:dynamodb:us-east-1:000000000000:table/{unique('table-')}/stream/2025-02-22T03:03:25.490"


def shape(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def status(response: dict) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def settled(client, mapping_uuid: str, state: str = "Enabled") -> dict:
    return wait_until(lambda: (got := client.get_event_source_mapping(UUID=mapping_uuid))["State"] == state and got,
                      what=f"mapping {state}")


def gone(client, mapping_uuid: str) -> bool:
    def deleted() -> bool:
        try:
            client.get_event_source_mapping(UUID=mapping_uuid)
        except client.exceptions.ResourceNotFoundException:
            return True
        return False

    return wait_until(deleted, what="mapping deleted")


@pytest.fixture
def function(lambda_client, make_function) -> str:
    return make_function()


def test_sqs_lifecycle_shapes_states_and_messages(lambda_client, make_function, function) -> None:
    arn = lambda_client.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    source = queue_arn()
    created = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=source)
    assert status(created) == 202 and set(shape(created)) == SQS_KEYS
    mapping_uuid = created["UUID"]
    assert (created["State"], created["StateTransitionReason"], created["FunctionArn"]) == (
        "Creating", "USER_INITIATED", arn)
    assert (created["BatchSize"], created["MaximumBatchingWindowInSeconds"], created["FunctionResponseTypes"]) == (
        10, 0, [])
    assert created["EventSourceMappingArn"] == f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{mapping_uuid}"
    got = settled(lambda_client, mapping_uuid)
    assert status(got) == 200 and set(shape(got)) == SQS_KEYS and got["LastModified"] >= created["LastModified"]

    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=source) == (
        409, "ResourceConflictException",
        f'An event source mapping with SQS arn (" {source} ") and function (" {function} ") already exists. Please '
        f"update or delete the existing mapping with UUID {mapping_uuid}")
    window = (400, "InvalidParameterValueException",
              "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
    assert call_error(lambda_client.update_event_source_mapping, UUID=mapping_uuid, BatchSize=100) == window
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=queue_arn(),
                      BatchSize=100) == window

    other = make_function()
    updated = lambda_client.update_event_source_mapping(UUID=mapping_uuid, FunctionName=other, BatchSize=15,
                                                        MaximumBatchingWindowInSeconds=1)
    assert status(updated) == 202 and updated["State"] == "Updating" and updated["FunctionArn"].endswith(f":{other}")
    got = settled(lambda_client, mapping_uuid)
    assert (got["BatchSize"], got["MaximumBatchingWindowInSeconds"]) == (15, 1)

    deleted = lambda_client.delete_event_source_mapping(UUID=mapping_uuid)
    assert status(deleted) == 202 and deleted["State"] == "Deleting" and set(shape(deleted)) == SQS_KEYS
    assert gone(lambda_client, mapping_uuid)
    # the same source and function may be mapped again once the old mapping is gone
    again = lambda_client.create_event_source_mapping(FunctionName=other, EventSourceArn=source, Enabled=False)
    assert again["State"] == "Disabled"


def test_enabling_and_disabling(lambda_client, function) -> None:
    created = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=queue_arn(),
                                                        BatchSize=1, Enabled=False)
    # created disabled: Disabled at once (recorded)
    assert created["State"] == "Disabled"
    assert lambda_client.update_event_source_mapping(UUID=created["UUID"], Enabled=True)["State"] == "Enabling"
    settled(lambda_client, created["UUID"])
    assert lambda_client.update_event_source_mapping(UUID=created["UUID"], Enabled=False)["State"] == "Disabling"
    assert settled(lambda_client, created["UUID"], "Disabled")["BatchSize"] == 1


def test_stream_shapes_and_defaults(lambda_client, function) -> None:
    kinesis = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=kinesis_arn(),
                                                        StartingPosition="LATEST")
    assert set(shape(kinesis)) == STREAM_KEYS
    assert {key: kinesis[key] for key in STREAM_KEYS - {"EventSourceArn", "EventSourceMappingArn", "FunctionArn",
                                                        "LastModified", "UUID"}} == {
        "BatchSize": 100, "BisectBatchOnFunctionError": False, "DestinationConfig": {"OnFailure": {}},
        "FunctionResponseTypes": [], "LastProcessingResult": "No records processed",
        "MaximumBatchingWindowInSeconds": 0, "MaximumRecordAgeInSeconds": -1, "MaximumRetryAttempts": -1,
        "ParallelizationFactor": 1, "StartingPosition": "LATEST", "State": "Creating",
        "StateTransitionReason": "User action", "TumblingWindowInSeconds": 0,
    }
    # the recorded lifecycle's "minimal" DynamoDB mapping
    failures = queue_arn()
    dynamodb = lambda_client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=dynamodb_arn(), DestinationConfig={"OnFailure": {"Destination": failures}},
        BatchSize=1, StartingPosition="TRIM_HORIZON", MaximumBatchingWindowInSeconds=1, MaximumRetryAttempts=1,
    )
    assert set(shape(dynamodb)) == STREAM_KEYS
    assert (dynamodb["DestinationConfig"], dynamodb["BatchSize"], dynamodb["MaximumRetryAttempts"]) == (
        {"OnFailure": {"Destination": failures}}, 1, 1)
    assert set(shape(settled(lambda_client, dynamodb["UUID"]))) == STREAM_KEYS
    # empty filters are left out (recorded); a filter is kept as given
    empty = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=dynamodb_arn(),
                                                      StartingPosition="LATEST", FilterCriteria={"Filters": []})
    assert "FilterCriteria" not in empty
    pattern = '{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 100]}]}}}}'
    filtered = lambda_client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=kinesis_arn(), StartingPosition="AT_TIMESTAMP",
        StartingPositionTimestamp=1741010802, FilterCriteria={"Filters": [{"Pattern": pattern}]})
    assert filtered["FilterCriteria"] == {"Filters": [{"Pattern": pattern}]}
    assert filtered["StartingPositionTimestamp"].timestamp() == 1741010802


def test_stream_rules_and_duplicates(lambda_client, unvalidated_client, function) -> None:
    source = dynamodb_arn()
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=source) == (
        400, "InvalidParameterValueException", "1 validation error detected: Value null at 'startingPosition' failed "
        "to satisfy constraint: Member must not be null.")
    assert call_error(unvalidated_client.create_event_source_mapping, FunctionName=function, EventSourceArn=source,
                      StartingPosition="invalid") == (
        400, "ValidationException", "1 validation error detected: Value 'invalid' at 'startingPosition' failed to "
        "satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=source,
                      StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1741010802) == (
        400, "InvalidParameterValueException", f"Unsupported starting position for arn type: {source}")
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=kinesis_arn(),
                      StartingPosition="AT_TIMESTAMP") == (
        400, "InvalidParameterValueException", "Need to specify a timestamp")
    for stream, wording in ((kinesis_arn(), "kinesis"), (source, "dynamodb")):
        first = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=stream,
                                                          StartingPosition="LATEST")
        assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=stream,
                          StartingPosition="TRIM_HORIZON") == (
            409, "ResourceConflictException",
            f'The event source arn (" {stream} ") and function (" {function} ") provided mapping already exists. '
            f"Please update or delete the existing mapping with UUID {first['UUID']}"), wording


def test_self_managed_kafka(lambda_client, function) -> None:
    arn = lambda_client.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    cluster = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000"]}}
    access = [{"Type": "BASIC_AUTH", "URI": SECRET}]
    assert call_error(lambda_client.create_event_source_mapping, Topics=["topic"], FunctionName=function,
                      SelfManagedEventSource=cluster) == (
        400, "InvalidParameterValueException", "Required 'sourceAccessConfigurations' parameter is missing.")
    default = lambda_client.create_event_source_mapping(Topics=["topic"], FunctionName=function,
                                                        SourceAccessConfigurations=access, SelfManagedEventSource=cluster)
    assert status(default) == 202 and set(shape(default)) == KAFKA_KEYS
    assert {key: default[key] for key in ("BatchSize", "StartingPosition", "State", "StateTransitionReason",
                                          "LastProcessingResult", "Topics", "SelfManagedKafkaEventSourceConfig")} == {
        "BatchSize": 100, "StartingPosition": "TRIM_HORIZON", "State": "Creating",
        "StateTransitionReason": "USER_INITIATED", "LastProcessingResult": "No records processed",
        "Topics": ["topic"], "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": default["UUID"]},
    }
    duplicate = (409, "ResourceConflictException", 'An event source mapping with event source ("{}"), function '
                 f'("{arn}"), topics ("topic") already exists. Please update or delete the existing mapping with UUID '
                 f"{default['UUID']}")
    assert call_error(lambda_client.create_event_source_mapping, Topics=["topic"], FunctionName=function,
                      SourceAccessConfigurations=access, SelfManagedEventSource=cluster) == (
        duplicate[0], duplicate[1], duplicate[2].format("kafka:1000"))
    values = lambda_client.create_event_source_mapping(
        Topics=["topic_2"], FunctionName=function, SourceAccessConfigurations=access, SelfManagedEventSource=cluster,
        BatchSize=1, SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "random_id"}, StartingPosition="LATEST")
    assert (values["BatchSize"], values["StartingPosition"], values["SelfManagedKafkaEventSourceConfig"]) == (
        1, "LATEST", {"ConsumerGroupId": "random_id"})
    both = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka:1000", "kafka:2000"]}}
    assert call_error(lambda_client.create_event_source_mapping, Topics=["topic"], FunctionName=function,
                      SourceAccessConfigurations=access, SelfManagedEventSource=both, BatchSize=1) == (
        duplicate[0], duplicate[1], duplicate[2].format("kafka:1000,kafka:2000"))


def test_rabbitmq_broker(lambda_client, function) -> None:
    """Amazon MQ follows AWS's parameter table (no recording): Queues and BASIC_AUTH are required."""
    broker = f"arn:aws:mq:us-east-1:000000000000:broker:{unique('b-')}:b-1234"
    access = [{"Type": "BASIC_AUTH", "URI": SECRET}, {"Type": "VIRTUAL_HOST", "URI": "/orders"}]
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=broker,
                      Queues=["orders"])[2] == "Required 'sourceAccessConfigurations' parameter is missing."
    assert call_error(lambda_client.create_event_source_mapping, FunctionName=function, EventSourceArn=broker,
                      SourceAccessConfigurations=access)[2] == (
        "1 validation error detected: Value null at 'queues' failed to satisfy constraint: Member must not be null.")
    created = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=broker,
                                                        Queues=["orders"], SourceAccessConfigurations=access)
    assert set(shape(created)) == {"BatchSize", "EventSourceArn", "EventSourceMappingArn", "FunctionArn",
                                   "LastModified", "LastProcessingResult", "Queues", "SourceAccessConfigurations",
                                   "State", "StateTransitionReason", "UUID"}
    assert (created["BatchSize"], created["Queues"], created["SourceAccessConfigurations"]) == (100, ["orders"], access)


def test_exceptions(lambda_client) -> None:
    unknown = str(uuid.uuid4())
    assert call_error(lambda_client.get_event_source_mapping, UUID=unknown) == NOT_FOUND
    assert call_error(lambda_client.delete_event_source_mapping, UUID=unknown) == NOT_FOUND
    assert call_error(lambda_client.update_event_source_mapping, UUID=unknown, Enabled=False) == NOT_FOUND
    # the list filters need not name anything that exists (recorded)
    assert lambda_client.list_event_source_mappings(FunctionName="doesnotexist")["EventSourceMappings"] == []
    assert lambda_client.list_event_source_mappings(EventSourceArn=queue_arn())["EventSourceMappings"] == []
    assert call_error(lambda_client.create_event_source_mapping, FunctionName="doesnotexist") == (
        400, "InvalidParameterValueException", "Unrecognized event source.")
    assert call_error(lambda_client.create_event_source_mapping, FunctionName="doesnotexist",
                      EventSourceArn=queue_arn()) == NO_FUNCTION
    assert call_error(lambda_client.create_event_source_mapping, FunctionName="doesnotexist",
                      EventSourceArn=queue_arn(), DestinationConfig={"OnSuccess": {"Destination": queue_arn()}}) == (
        400, "InvalidParameterValueException",
        "Unsupported DestinationConfig parameter for given event source mapping type.")


def test_parameters_each_source_takes(lambda_client, unvalidated_client, function) -> None:
    def refusal(**request: object) -> tuple[int, str, str]:
        return call_error(unvalidated_client.create_event_source_mapping, FunctionName=function, **request)

    def unsupported(member: str) -> tuple[int, str, str]:
        return 400, "InvalidParameterValueException", f"Unsupported '{member}' parameter for given event source " \
            "mapping type."

    assert refusal(EventSourceArn=queue_arn(), StartingPosition="LATEST") == (
        400, "InvalidParameterValueException", "StartingPosition is not valid for SQS event sources.")
    assert refusal(EventSourceArn=queue_arn(), ParallelizationFactor=2) == unsupported("parallelizationFactor")
    assert refusal(EventSourceArn=queue_arn(), DestinationConfig={"OnFailure": {"Destination": queue_arn()}})[2] == (
        "Unsupported DestinationConfig parameter for given event source mapping type.")
    assert refusal(EventSourceArn=kinesis_arn(), StartingPosition="LATEST",
                   ScalingConfig={"MaximumConcurrency": 5}) == unsupported("scalingConfig")
    assert refusal(EventSourceArn=queue_arn(), ScalingConfig={"MaximumConcurrency": 1}) == (
        400, "ValidationException", "1 validation error detected: Value '1' at 'scalingConfig.maximumConcurrency' "
        "failed to satisfy constraint: Member must have value greater than or equal to 2")
    assert refusal(EventSourceArn=queue_arn() + ".fifo", MaximumBatchingWindowInSeconds=5) == (
        400, "InvalidParameterValueException", "Batching window is not supported for FIFO queues")
    assert refusal(EventSourceArn=kinesis_arn(), StartingPosition="LATEST", MaximumRecordAgeInSeconds=30)[2] == (
        "1 validation error detected: Value '30' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member "
        "must have value greater than or equal to 60.")
    assert refusal(EventSourceArn="arn:aws:s3:::bucket") == (
        400, "InvalidParameterValueException", "Unrecognized event source.")
    for pattern in ("null", "simple string", '{"eventSource": "aws:sqs"}', '{"eventSource": []}',
                    '[{"eventName": ["INSERT"=123}]', '{"body": {"n": [{"numeric": [">", "x"]}]}}'):
        assert refusal(EventSourceArn=queue_arn(), MaximumBatchingWindowInSeconds=1,
                       FilterCriteria={"Filters": [{"Pattern": pattern}]}) == BAD_FILTER, pattern
    sqs = lambda_client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=queue_arn(), BatchSize=20, MaximumBatchingWindowInSeconds=1,
        ScalingConfig={"MaximumConcurrency": 2}, FunctionResponseTypes=["ReportBatchItemFailures"],
        FilterCriteria={"Filters": [{"Pattern": '{"body": {"test2": [{"exists": true}]}}'}]})
    assert set(shape(sqs)) == SQS_KEYS | {"ScalingConfig", "FilterCriteria"}
    assert (sqs["ScalingConfig"], sqs["FunctionResponseTypes"]) == ({"MaximumConcurrency": 2},
                                                                    ["ReportBatchItemFailures"])
    settled(lambda_client, sqs["UUID"])
    assert call_error(lambda_client.update_event_source_mapping, UUID=sqs["UUID"], ParallelizationFactor=3) == (
        unsupported("parallelizationFactor"))


def test_function_name_variations(lambda_client, function) -> None:
    arn = lambda_client.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    version = lambda_client.publish_version(FunctionName=function)["Version"]
    alias_arn = lambda_client.create_alias(FunctionName=function, Name="myalias", FunctionVersion=version)["AliasArn"]
    source = queue_arn()
    for name, expected in (
        (function, arn), (f"{function}:$LATEST", f"{arn}:$LATEST"), (f"{function}:{version}", f"{arn}:{version}"),
        (f"{function}:myalias", alias_arn), (arn, arn), (f"{arn}:{version}", f"{arn}:{version}"),
        (alias_arn, alias_arn),
    ):
        created = lambda_client.create_event_source_mapping(FunctionName=name, EventSourceArn=source)
        assert created["FunctionArn"] == expected, name
        settled(lambda_client, created["UUID"])
        lambda_client.delete_event_source_mapping(UUID=created["UUID"])
        gone(lambda_client, created["UUID"])
    for missing in (f"{function}:nosuchalias", f"{function}:99", arn.replace("us-east-1", "eu-west-1")):
        assert call_error(lambda_client.create_event_source_mapping, FunctionName=missing,
                          EventSourceArn=source) == NO_FUNCTION, missing


def test_list_filters_and_paging(lambda_client, unvalidated_client, make_function) -> None:
    first, second = make_function(), make_function()
    shared = queue_arn()
    mine = {lambda_client.create_event_source_mapping(FunctionName=first, EventSourceArn=source)["UUID"]
            for source in (shared, queue_arn(), queue_arn())}
    theirs = lambda_client.create_event_source_mapping(FunctionName=second, EventSourceArn=shared)["UUID"]
    listed = lambda_client.list_event_source_mappings(FunctionName=first)
    assert {item["UUID"] for item in listed["EventSourceMappings"]} == mine and "NextMarker" not in listed
    by_source = lambda_client.list_event_source_mappings(EventSourceArn=shared)["EventSourceMappings"]
    assert len(by_source) == 2 and theirs in {item["UUID"] for item in by_source}
    both = lambda_client.list_event_source_mappings(FunctionName=second, EventSourceArn=shared)
    assert [item["UUID"] for item in both["EventSourceMappings"]] == [theirs]
    seen, marker = [], None
    while True:
        page = lambda_client.list_event_source_mappings(FunctionName=first, MaxItems=2, **(
            {"Marker": marker} if marker else {}))
        assert len(page["EventSourceMappings"]) <= 2
        seen += [item["UUID"] for item in page["EventSourceMappings"]]
        if not (marker := page.get("NextMarker")):
            break
    assert sorted(seen) == sorted(mine) and len(seen) == 3
    assert call_error(unvalidated_client.list_event_source_mappings, MaxItems=0) == (
        400, "ValidationException", "1 validation error detected: Value '0' at 'maxItems' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1")


def test_tags_on_mapping_arns(lambda_client, function) -> None:
    created = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=queue_arn(),
                                                        Tags={"testtag": "value"})
    arn = created["EventSourceMappingArn"]
    assert "Tags" not in created and lambda_client.list_tags(Resource=arn)["Tags"] == {"testtag": "value"}
    lambda_client.untag_resource(Resource=arn, TagKeys=["testtag"])
    # the recorded lifecycle
    assert status(lambda_client.tag_resource(Resource=arn, Tags={"A": "tag-a"})) == 204
    lambda_client.tag_resource(Resource=arn, Tags={"B": "tag-b", "C": "tag-c"})
    lambda_client.tag_resource(Resource=arn, Tags={"C": "tag-c-newsuffix", "D": "tag-d"})
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"A": "tag-a", "B": "tag-b", "C": "tag-c-newsuffix",
                                                             "D": "tag-d"}
    assert status(lambda_client.untag_resource(Resource=arn, TagKeys=["A"])) == 204
    lambda_client.untag_resource(Resource=arn, TagKeys=["B", "C"])
    lambda_client.untag_resource(Resource=arn, TagKeys=["nonexisting"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"D": "tag-d"}
    lambda_client.untag_resource(Resource=arn, TagKeys=["D", "nonexisting"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {}
    assert call_error(lambda_client.tag_resource, Resource=arn, Tags={f"k{n}": "v" for n in range(51)}) == (
        400, "InvalidParameterValueException", "Number of tags exceeds resource tag limit.")
    missing = arn.rsplit(":", 1)[0] + f":{uuid.uuid4()}"
    expected = (404, "ResourceNotFoundException", f"Event source mapping not found: {missing}")
    assert call_error(lambda_client.tag_resource, Resource=missing, Tags={"A": "a"}) == expected
    assert call_error(lambda_client.untag_resource, Resource=missing, TagKeys=["A"]) == expected
    assert call_error(lambda_client.list_tags, Resource=missing) == expected


def test_a_mapping_outlives_its_function(lambda_client, make_function) -> None:
    """Recorded (test_event_source_mapping_lifecycle_delete_function): after DeleteFunction the mapping is still
    there, Enabled, and DeleteEventSourceMapping removes it."""
    name = make_function()
    created = lambda_client.create_event_source_mapping(FunctionName=name, EventSourceArn=dynamodb_arn(),
                                                        StartingPosition="TRIM_HORIZON")
    settled(lambda_client, created["UUID"])
    lambda_client.delete_function(FunctionName=name)
    after = lambda_client.get_event_source_mapping(UUID=created["UUID"])
    assert after["State"] == "Enabled" and after["FunctionArn"] == created["FunctionArn"]
    assert lambda_client.delete_event_source_mapping(UUID=created["UUID"])["State"] == "Deleting"
    assert gone(lambda_client, created["UUID"])


def test_mappings_survive_a_restart(tmp_path) -> None:
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="kept", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": "def handler(event, context):\n    return 1\n"})})
        enabled = client.create_event_source_mapping(FunctionName="kept", EventSourceArn=kinesis_arn(),
                                                     StartingPosition="LATEST", Tags={"k": "v"})
        disabled = client.create_event_source_mapping(FunctionName="kept", EventSourceArn=queue_arn(), Enabled=False)
        before = shape(settled(client, enabled["UUID"]))
        doomed = client.create_event_source_mapping(FunctionName="kept", EventSourceArn=queue_arn())
        settled(client, doomed["UUID"])
        client.delete_event_source_mapping(UUID=doomed["UUID"])
        gone(client, doomed["UUID"])
    finally:
        server.stop()
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        assert shape(client.get_event_source_mapping(UUID=enabled["UUID"])) == before
        assert client.get_event_source_mapping(UUID=disabled["UUID"])["State"] == "Disabled"
        assert call_error(client.get_event_source_mapping, UUID=doomed["UUID"]) == NOT_FOUND
        assert client.list_tags(Resource=enabled["EventSourceMappingArn"])["Tags"] == {"k": "v"}
        assert len(client.list_event_source_mappings()["EventSourceMappings"]) == 2
    finally:
        server.stop()
