import json

import pytest
from jsonschema import Draft202012Validator

from wanmock import schemas


@pytest.mark.parametrize("name", schemas.names())
def test_every_schema_is_valid_2020_12(name: str) -> None:
    document = schemas.load(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"urn:wanmock:{name}"


EXAMPLES = list(schemas.example_files())


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.path.suffix == ".json"],
                         ids=lambda e: e.id)
def test_every_documented_example_matches_its_schema(example: schemas.Example) -> None:
    schemas.validate(example.schema, json.loads(example.path.read_text()))


def test_examples_cover_every_provider_and_the_verbatim_cancel_example_is_broken_json() -> None:
    providers = {e.schema.split("/")[0] for e in EXAMPLES}
    assert providers == {"therouter", "runcomfy", "dashscope"}
    verbatim = next(e for e in EXAMPLES if e.path.suffix == ".txt")
    with pytest.raises(json.JSONDecodeError):
        json.loads(verbatim.path.read_text())
    repaired = verbatim.path.read_text().replace('"completed"\n', '"completed",\n')
    schemas.validate("runcomfy/cancel-response", json.loads(repaired))


DS_BODY = {"model": "wan2.2-t2i-flash", "input": {"prompt": "p"}}
DS_OUT = {"task_id": "t", "task_status": "SUCCEEDED", "results": [{"url": "https://oss.example/1.png"}]}
DS_TASK = {"request_id": "r", "usage": {"image_count": 1}, "output": DS_OUT}
DS_FAILED_IMAGE = {"code": "InternalError.Algo", "message": "m"}


@pytest.mark.parametrize(
    ("schema", "body", "field", "rule", "text"),
    [
        ("runcomfy/submit-request", {"prompt": "x", "aspect_ratio": "16:9"}, "aspect_ratio",
         "enum", '"1440:810 (16:9)"'),
        ("runcomfy/submit-request", {}, "prompt", "required", "prompt is required"),
        ("runcomfy/submit-request", {"prompt": "x", "sed": 1}, "sed", "additionalProperties",
         "unknown field 'sed'"),
        ("runcomfy/submit-request", {"prompt": "x", "duration": 10}, "duration", "enum", "5"),
        ("therouter/submit-request", {"model": "m", "prompt": "p", "size": "2048x2048"}, "size",
         "pattern", "512-1440"),
        ("therouter/submit-request", {"model": "m", "prompt": "p", "n": 0}, "n", "minimum", ">= 1"),
        ("therouter/submit-request", {"model": "m", "prompt": 5}, "prompt", "type",
         "type string; got integer 5"),
        ("runcomfy/status", {"request_id": "r", "status": "completed", "queue_position": 1},
         "queue_position", "not", "must not be present when status is 'completed'"),
        ("dashscope/submit-request", {**DS_BODY, "parameters": {"size": "1024x1024"}},
         "parameters.size", "pattern", "asterisk and each side 512-1440"),
        ("dashscope/submit-request", {**DS_BODY, "parameters": {"size": "1441*1024"}},
         "parameters.size", "pattern", "each side 512-1440"),
        ("dashscope/submit-request", {**DS_BODY, "parameters": {"n": 5}}, "parameters.n",
         "maximum", "<= 4"),
        ("dashscope/submit-request", {**DS_BODY, "parameters": {"prompt_extent": True}},
         "parameters.prompt_extent", "additionalProperties", "unknown field 'prompt_extent'"),
        ("dashscope/submit-request", {"model": "wan2.2-t2i-flash"}, "input", "required",
         "input is required"),
        ("dashscope/task", {**DS_TASK, "output": {"task_id": "t", "task_status": "SUCCEEDED"}},
         "output.results", "required", "output.results is required"),
        ("dashscope/task", {**DS_TASK, "output": {**DS_OUT, "results": [DS_FAILED_IMAGE]}},
         "output.results", "contains", "does not contain"),
        ("dashscope/task", {"request_id": "r", "output": {"task_id": "t", "task_status": "FAILED",
                                                          "message": "m"}},
         "output.code", "required", "output.code is required"),
        ("dashscope/task", {**DS_TASK, "output": {"task_id": "t", "task_status": "RUNNING"}},
         "usage", "not", "usage must not be present"),
        ("dashscope/task", {"request_id": "r", "output": {"task_id": "t", "task_status": "CANCELED",
                                                          "results": [DS_FAILED_IMAGE]}},
         "output.results", "not", "output.results must not be present"),
        ("dashscope/task", {**DS_TASK, "output": {**DS_OUT, "end_time": "2025-01-08T16:04Z"}},
         "output.end_time", "pattern", "'YYYY-MM-DD HH:MM:SS.mmm'"),
        ("dashscope/error", {"code": "invalid_api_key", "message": "m"}, "code", "pattern",
         "a DashScope code"),
    ],
)
def test_issues_name_field_rule_and_allowed_values(
    schema: str, body: object, field: str, rule: str, text: str
) -> None:
    (issue,) = schemas.check(schema, body)
    assert (issue.field, issue.rule) == (field, rule)
    assert text in issue.message


def test_dashscope_partial_failure_passes_and_the_2_megapixel_rule_is_left_to_code() -> None:
    partial = {**DS_TASK, "output": {**DS_OUT, "results": [*DS_OUT["results"], DS_FAILED_IMAGE],
                                     "task_metrics": {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}}}
    assert not schemas.check("dashscope/task", partial)
    # 1440*1440 is 2,073,600 px: over 2 MP, yet only code can say so (see the schema's description).
    assert not schemas.check("dashscope/submit-request",
                             {**DS_BODY, "parameters": {"size": "1440*1440"}})


def test_validate_raises_with_every_issue_and_unknown_names_are_listed() -> None:
    with pytest.raises(schemas.SchemaViolation, match="/seed") as info:
        schemas.validate("runcomfy/submit-request", {"prompt": "", "seed": -1})
    assert len(info.value.issues) == 2
    with pytest.raises(KeyError, match="therouter/job"):
        schemas.load("therouter/jobs")


def test_job_schema_requires_urls_only_when_succeeded() -> None:
    base = {"id": "img_x", "status": "succeeded"}
    assert schemas.check("therouter/job", base)
    assert not schemas.check("therouter/job", {**base, "result": {"data": [{"url": "https://a"}]}})
    assert schemas.check("therouter/job", {"id": "img_x", "status": "queued",
                                           "unsigned_urls": ["https://a"]})


@pytest.mark.parametrize("provider", ["dashscope", "therouter", "runcomfy"])
def test_the_fast_validator_agrees_with_jsonschema(provider: str) -> None:
    """check() trusts the Rust validator's "valid"; both must agree on every generated body."""
    from hypothesis import given, settings

    from wanmock.contracts.strategies import invalid_requests, valid_requests

    name = f"{provider}/submit-request"

    def agree(body: object) -> None:
        slow_valid = not list(schemas.validator(name).iter_errors(body))
        assert schemas._fast(name).is_valid(body) == slow_valid, body

    settings(max_examples=60)(given(valid_requests(provider))(agree))()
    settings(max_examples=60)(given(invalid_requests(provider).map(lambda c: c.body))(agree))()
    for example in EXAMPLES:
        if example.path.suffix == ".json":
            body = json.loads(example.path.read_text())
            assert schemas._fast(example.schema).is_valid(body) == (
                not list(schemas.validator(example.schema).iter_errors(body)))


@pytest.mark.parametrize("name", ["dashscope/submit-request", "therouter/submit-request"])
def test_a_pattern_ends_at_the_end_of_the_string_in_both_validators(name: str) -> None:
    """JSON Schema's "$" is the end of the string; Python's also matched before a final newline,
    so jsonschema alone passed "1024*1024\n" that the compiled validator refused."""
    size = {"dashscope/submit-request": "1024*1024", "therouter/submit-request": "1024x1024"}[name]
    body = {"model": "m", "prompt": "x", "size": size}
    if name.startswith("dashscope"):
        body = {"model": "m", "input": {"prompt": "x"}, "parameters": {"size": size}}
    assert schemas.check(name, body) == []
    text = json.dumps(body).replace(size, size + "\\n")
    issues = schemas.check(name, json.loads(text))
    assert [issue.rule for issue in issues] == ["pattern"], issues
    assert list(schemas.validator(name).iter_errors(json.loads(text)))  # jsonschema too


def test_a_body_the_two_validators_disagree_on_is_never_called_valid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuses:
        def is_valid(self, _: object) -> bool:
            return False

    body = {"prompt": "x"}
    assert schemas.check("runcomfy/submit-request", body) == []
    monkeypatch.setattr(schemas, "_fast", lambda name: Refuses())
    (issue,) = schemas.check("runcomfy/submit-request", body)
    assert issue.rule == "schema" and "compiled validator refuses it" in issue.message

