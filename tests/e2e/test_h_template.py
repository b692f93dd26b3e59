"""template.yaml against the contracts it implements: the Glue table's
columns are exactly the event fields of docs/events.md (and the same names
and types as the Athena DDL in infra/sql), partition projection and the
Firehose prefixes are the documented ones, and the mapping table has the key
schema the DynamoDB store and the moto tests use."""

import os
import re

from cfnlint.decode import cfn_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def template():
    return cfn_yaml.load(os.path.join(ROOT, "template.yaml"))


def doc_fields():
    """Field names from the table in docs/events.md (`a`, `b` rows list several)."""
    fields = []
    with open(os.path.join(ROOT, "docs", "events.md")) as f:
        for line in f:
            if line.startswith("| `"):
                first_cell = line.split("|")[1]
                fields += re.findall(r"`(\w+)`", first_cell)
    return fields


def ddl_columns():
    with open(os.path.join(ROOT, "infra", "sql", "events_table.sql")) as f:
        return re.findall(r"^\s*`(\w+)` (\w+),?$", f.read(), re.M)


def glue_table():
    return template()["Resources"]["EventsTable"]["Properties"]["TableInput"]


def test_glue_columns_are_exactly_the_event_fields():
    columns = [(c["Name"], c["Type"]) for c in glue_table()["StorageDescriptor"]["Columns"]]
    assert [n for n, _ in columns] == doc_fields()
    assert columns == ddl_columns()


def test_glue_types_follow_the_documented_json_types():
    types = {}
    with open(os.path.join(ROOT, "docs", "events.md")) as f:
        for line in f:
            if line.startswith("| `"):
                cells = [c.strip() for c in line.split("|")[1:3]]
                names = re.findall(r"`(\w+)`", cells[0])
                kinds = [k.strip() for k in cells[1].split(",")]
                kinds = kinds if len(kinds) == len(names) else kinds * len(names)
                types.update(zip(names, kinds))
    allowed = {"int": {"int", "bigint"}, "float": {"double"}, "string": {"string"}}
    for column in glue_table()["StorageDescriptor"]["Columns"]:
        assert column["Type"] in allowed[types[column["Name"]]], column


def test_partition_projection_and_layout():
    table = glue_table()
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("dt", "string")]
    params = table["Parameters"]
    expected = {"projection.enabled": "true", "projection.dt.type": "date", "projection.dt.format": "yyyy-MM-dd",
                "projection.dt.range": "2024-01-01,NOW", "projection.dt.interval": "1",
                "projection.dt.interval.unit": "DAYS"}
    assert {k: params[k] for k in expected} == expected
    assert params["storage.location.template"] == {"Fn::Sub": "s3://${DataBucket}/events/dt=${!dt}/"}
    serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.openx.data.jsonserde.JsonSerDe"
    s3 = template()["Resources"]["EventStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"] == "events/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["ErrorOutputPrefix"] == "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["CompressionFormat"] == "GZIP"


def test_mapping_table_key_schema():
    props = template()["Resources"]["MappingTable"]["Properties"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == [("host", "HASH"), ("name", "RANGE")]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def gateway_statements():
    policies = template()["Resources"]["GatewayFunction"]["Properties"]["Policies"]
    assert len(policies) == 1
    return policies[0]["Statement"]


def test_upstream_credentials_are_least_privilege():
    """Upstream secrets and ECR repositories are granted only as listed in
    their parameters, and not at all when those are empty (issue 13)."""
    t = template()
    conditions = t["Conditions"]
    for parameter, condition in (("UpstreamSecretArns", "HasUpstreamSecrets"),
                                 ("EcrRepositoryArns", "HasEcrRepositories")):
        assert t["Parameters"][parameter]["Type"] == "CommaDelimitedList"
        assert t["Parameters"][parameter]["Default"] == ""
        assert conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": parameter}]}, ""]}]}
    conditional = {}
    for statement in gateway_statements():
        if "Fn::If" in statement:
            condition, then, otherwise = statement["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            actions = then["Action"] if isinstance(then["Action"], list) else [then["Action"]]
            for action in actions:
                conditional[action] = (condition, then["Resource"])
        else:
            # Unconditional statements never reach upstream secrets or ECR.
            assert not str(statement["Action"]).startswith("ecr:"), statement
            if statement["Action"] == "secretsmanager:GetSecretValue":
                assert statement["Resource"] == {"Ref": "ClientIdKey"}
    assert conditional == {
        "secretsmanager:GetSecretValue": ("HasUpstreamSecrets", {"Ref": "UpstreamSecretArns"}),
        # The one action IAM cannot scope to a resource.
        "ecr:GetAuthorizationToken": ("HasEcrRepositories", "*"),
        "ecr:BatchGetImage": ("HasEcrRepositories", {"Ref": "EcrRepositoryArns"}),
        "ecr:GetDownloadUrlForLayer": ("HasEcrRepositories", {"Ref": "EcrRepositoryArns"}),
        "ecr:BatchCheckLayerAvailability": ("HasEcrRepositories", {"Ref": "EcrRepositoryArns"}),
        "ecr:ListImages": ("HasEcrRepositories", {"Ref": "EcrRepositoryArns"}),
    }
