"""Label Studio's payloads, parsed without a server: labelling configs, requests, predictions, scores."""

import json
import math

import numpy as np
import pytest

from skcal.serve.labelconfig import LabellingConfigError, parse_labelling_config
from skcal.serve.model import prediction_scores
from skcal.serve.protocol import (
    MAX_BODY_BYTES,
    LabelEvent,
    ProtocolError,
    parse_json_body,
    parse_predict,
    parse_setup,
    parse_webhook,
    prediction,
)

TEXT_CONFIG = """<View>
  <Header value="Sentiment"/>
  <Text name="review" value="$sentence"/>
  <View style="box">
    <Choices name="mood" toName="review" choice="single">
      <Choice value="Good" alias="pos"/>
      <Choice value="Bad"/>
      <Choice value="Unsure"/>
    </Choices>
  </View>
</View>"""
IMAGE_CONFIG = """<View><Image name="photo" value="$image"/>
<Choices name="kind" toName="photo"><Choice value="Cat"/><Choice value="Dog"/></Choices></View>"""


@pytest.fixture
def config():
    return parse_labelling_config(TEXT_CONFIG)


# -- labelling configs ----------------------------------------------------------
def test_text_config_gives_names_field_and_classes_in_order():
    config = parse_labelling_config(TEXT_CONFIG)
    assert (config.control, config.object_name, config.object_type, config.data_key) == (
        "mood",
        "review",
        "Text",
        "sentence",
    )
    assert config.classes == ("pos", "Bad", "Unsure")  # an alias is what annotations store


def test_image_config_and_choosing_a_control():
    config = parse_labelling_config(IMAGE_CONFIG)
    assert (config.object_type, config.data_key, config.classes) == ("Image", "image", ("Cat", "Dog"))
    two = TEXT_CONFIG.replace("</View>\n</View>", '</View><Choices name="topic" toName="review">'
                              '<Choice value="A"/><Choice value="B"/></Choices></View>')  # fmt: skip
    assert parse_labelling_config(two).control == "mood"
    assert parse_labelling_config(two, control="topic").classes == ("A", "B")


@pytest.mark.parametrize(
    "xml, message",
    [
        ("", "empty"),
        ("<View><Text", "not well-formed XML"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><View/>', "DOCTYPE"),
        ('<View><Text name="t" value="$t"/></View>', "no <Choices>"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="nope"><Choice value="a"/>'
         '<Choice value="b"/></Choices></View>', "no <Choices> control whose toName"),
        ('<View><Audio name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/>'
         '<Choice value="b"/></Choices></View>', "Text/Image objects"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t" choice="multiple"><Choice value="a"/>'
         '<Choice value="b"/></Choices></View>', "choice='multiple'"),
        ('<View><Text name="t" value="t"/><Choices name="c" toName="t"><Choice value="a"/>'
         '<Choice value="b"/></Choices></View>', "expected a task field"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/></Choices></View>',
         "needs two"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/>'
         '<Choice value="a"/></Choices></View>', "repeats"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/>'
         "<Choice/></Choices></View>", "without a value"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_with_the_reason(xml, message):
    with pytest.raises(LabellingConfigError, match=message.replace("(", r"\(").replace("$", r"\$")):
        parse_labelling_config(xml)


def test_a_named_control_that_does_not_exist():
    with pytest.raises(LabellingConfigError, match="no <Choices name='topic'>"):
        parse_labelling_config(TEXT_CONFIG, control="topic")


# -- request bodies -----------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, status, message",
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b'{"a": NaN}', 400, "NaN is not valid JSON"),
        (b"[1, 2]", 400, "JSON list"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"{" + b" " * MAX_BODY_BYTES + b"}", 413, "more than"),
    ],
)
def test_bodies_that_are_not_one_json_object(raw, status, message):
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_json_body(raw)
    assert caught.value.status == status


def test_setup_payload():
    request = parse_setup({"project": "7.1700000000", "schema": TEXT_CONFIG, "hostname": "http://ls:8080"})
    assert (request.project, request.label_config, request.hostname) == ("7", TEXT_CONFIG, "http://ls:8080")
    for body, message in [({}, "'schema'"), ({"schema": 3}, "'schema'"), ({"schema": "x", "project": "x"}, "project")]:
        with pytest.raises(ProtocolError, match=message) as caught:
            parse_setup(body)
        assert caught.value.status == 422


def test_predict_payload(config):
    body = {"tasks": [{"id": 4, "data": {"sentence": "fine"}}, {"data": {"sentence": ""}}], "project": "2.17"}
    request = parse_predict(body, config)
    assert [(task.task_id, task.value) for task in request.tasks] == [(4, "fine"), (None, "")]
    assert request.project == "2"


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "'tasks' must be a non-empty list"),
        ({"tasks": []}, "non-empty list"),
        ({"tasks": {"id": 1}}, "non-empty list"),
        ({"tasks": [3]}, r"tasks\[0\] is a JSON int"),
        ({"tasks": [{"id": 1}]}, "has no 'data' object"),
        ({"tasks": [{"id": 1, "data": {"text": "x"}}]}, "no data field 'sentence'.*fields are \\['text'\\]"),
        ({"tasks": [{"id": 1, "data": {"sentence": 5}}]}, "must be a string"),
        ({"tasks": [{"id": "a", "data": {"sentence": "x"}}]}, "'id' must be an integer"),
        ({"tasks": [{"id": True, "data": {"sentence": "x"}}]}, "'id' must be an integer"),
    ],
)
def test_bad_predict_payloads(config, body, message):
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_predict(body, config)
    assert caught.value.status == 422


def test_empty_image_urls_are_refused():
    config = parse_labelling_config(IMAGE_CONFIG)
    with pytest.raises(ProtocolError, match="empty image URL"):
        parse_predict({"tasks": [{"id": 1, "data": {"image": " "}}]}, config)


# -- webhooks -----------------------------------------------------------------------
def annotation(annotation_id, label, task_id=10, **extra):
    result = [] if label is None else [{"from_name": "mood", "to_name": "review", "type": "choices",
                                        "value": {"choices": [label]}}]  # fmt: skip
    return {"id": annotation_id, "task": task_id, "result": result, **extra}


def task(task_id=10, text="so so"):
    return {"id": task_id, "data": {"sentence": text}, "project": 3}


def test_created_and_updated_annotations_become_label_events(config):
    for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        body = {"action": action, "annotation": annotation(5, "Bad"), "task": task(), "project": {"id": 3}}
        request = parse_webhook(body, config)
        assert request.project == "3" and not request.ignored and not request.train_now
        assert request.events == [LabelEvent(5, 10, "Bad", "so so")]


def test_bulk_created_annotations_are_matched_to_their_tasks(config):
    body = {
        "action": "ANNOTATIONS_CREATED",
        "annotation": [annotation(1, "pos", task_id=11), annotation(2, "Unsure", task_id=12)],
        "task": [task(12, "second"), task(11, "first")],
    }
    events = parse_webhook(body, config).events
    assert events == [LabelEvent(1, 11, "pos", "first"), LabelEvent(2, 12, "Unsure", "second")]


def test_withdrawn_annotations_label_nothing(config):
    deleted = parse_webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 4}, {"id": 9}]}, config)
    assert deleted.events == [LabelEvent(4, None, None, None), LabelEvent(9, None, None, None)]
    legacy = parse_webhook({"action": "ANNOTATION_DELETED", "annotation": {"id": 4}}, None)
    assert legacy.events == [LabelEvent(4, None, None, None)]
    skipped = {"action": "ANNOTATION_CREATED", "annotation": annotation(6, "Bad", was_cancelled=True), "task": task()}
    assert parse_webhook(skipped, config).events == [LabelEvent(6, 10, None, None)]
    empty = {"action": "ANNOTATION_UPDATED", "annotation": annotation(7, None), "task": task()}
    assert parse_webhook(empty, config).events == [LabelEvent(7, 10, None, None)]
    other_control = annotation(8, None)
    other_control["result"] = [{"from_name": "notes", "type": "textarea", "value": {"text": ["hi"]}}]
    body = {"action": "ANNOTATION_CREATED", "annotation": other_control, "task": task()}
    assert parse_webhook(body, config).events == [LabelEvent(8, 10, None, None)]


def test_training_and_ignored_actions(config):
    assert parse_webhook({"action": "START_TRAINING", "project": {"id": 3}}, config).train_now
    for action in ("PROJECT_UPDATED", "TASKS_CREATED", "LABEL_LINK_CREATED"):
        request = parse_webhook({"action": action, "project": {"id": 3, "label_config": "x"}}, config)
        assert request.ignored and request.events == [] and request.label_config == "x"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({}, 400, "'action' must be a non-empty string"),
        ({"action": 3}, 400, "'action'"),
        ({"action": "SOMETHING_ELSE"}, 422, "unknown action 'SOMETHING_ELSE'"),
        ({"action": "ANNOTATION_CREATED", "project": "abc"}, 422, "'project' must be a project id"),
        ({"action": "ANNOTATION_CREATED"}, 422, "must be an annotation object"),
        ({"action": "ANNOTATION_CREATED", "annotation": {"id": "x"}, "task": task()}, 422, "id must be an integer"),
        ({"action": "ANNOTATION_CREATED", "annotation": {"id": 1, "result": {}}, "task": task()}, 422,
         "'result' must be a list"),
        ({"action": "ANNOTATION_CREATED", "annotation": annotation(1, "Bad")}, 422, "expected a task object"),
        ({"action": "ANNOTATION_CREATED", "annotation": annotation(1, "Bad"), "task": {"id": 1, "data": {}}}, 422,
         "no data field 'sentence'"),
        ({"action": "ANNOTATION_CREATED", "annotation": annotation(1, "Maybe"), "task": task()}, 422,
         "label 'Maybe' is not one of the labelling config's choices"),
        ({"action": "ANNOTATIONS_CREATED", "annotation": [], "task": []}, 422, "non-empty list"),
        ({"action": "ANNOTATIONS_DELETED", "annotations": []}, 422, "non-empty list"),
        ({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": None}]}, 422, "must be an integer"),
        ({"action": "ANNOTATIONS_DELETED", "annotations": ["x"]}, 422, "must be an object with an 'id'"),
    ],
)  # fmt: skip
def test_bad_webhooks(config, body, status, message):
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_webhook(body, config)
    assert caught.value.status == status


def test_several_choices_and_malformed_regions(config):
    two = annotation(1, "Bad")
    two["result"][0]["value"]["choices"] = ["Bad", "pos"]
    with pytest.raises(ProtocolError, match="2 choices"):
        parse_webhook({"action": "ANNOTATION_CREATED", "annotation": two, "task": task()}, config)
    broken = annotation(1, "Bad")
    broken["result"][0]["value"] = {"choices": "Bad"}
    with pytest.raises(ProtocolError, match="value.choices, a list of strings"):
        parse_webhook({"action": "ANNOTATION_CREATED", "annotation": broken, "task": task()}, config)


def test_an_annotation_needs_a_known_config():
    body = {"action": "ANNOTATION_CREATED", "annotation": annotation(1, "Bad"), "task": task()}
    with pytest.raises(ProtocolError, match="no labelling config is known") as caught:
        parse_webhook(body, None)
    assert caught.value.status == 409


def test_label_events_round_trip_through_json():
    event = LabelEvent(3, 9, "Bad", "text é")
    assert LabelEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


# -- predictions and scores -------------------------------------------------------------
def test_prediction_shape(config):
    answer = prediction("Bad", 0.75, config, "v1")
    assert answer == {
        "result": [{"from_name": "mood", "to_name": "review", "type": "choices", "value": {"choices": ["Bad"]},
                    "score": 0.75}],
        "score": 0.75,
        "model_version": "v1",
    }  # fmt: skip
    assert prediction("Bad", math.nan, config, "v1")["score"] == 0.0


def test_scores_order_tasks_by_uncertainty():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    confidence = prediction_scores(probabilities, "confidence")
    margin = prediction_scores(probabilities, "margin")
    entropy = prediction_scores(probabilities, "entropy")
    np.testing.assert_allclose(confidence, [0.9, 0.4, 1 / 3, 0.5])
    np.testing.assert_allclose(margin, [0.85, 0.05, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(entropy[2], 1.0)  # uniform: the most uncertain, scored 1
    assert np.all((entropy >= 0) & (entropy <= 1))
    # the confident row is last when sorting confidence or margin ascending, and entropy descending
    assert np.argsort(confidence)[-1] == np.argsort(margin, kind="stable")[-1] == np.argsort(-entropy)[-1] == 0
    with pytest.raises(ValueError, match="unknown score mode"):
        prediction_scores(probabilities, "variance")
