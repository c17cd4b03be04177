"""Built-in model factories, the sentence embedder, images from task URLs, and factories by name."""

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from PIL import Image
from sklearn.pipeline import Pipeline

from skcal import ContinualActiveClassifier
from skcal.models import SmallCNN
from skcal.serve import LabelStudioBackend, ProtocolError, parse_labelling_config
from skcal.serve.factories import (
    BUILTIN_FACTORIES,
    ImageArrays,
    SentenceEmbedder,
    image_resnet18_classifier,
    resolve_factory,
    text_classifier,
)
from skcal.serve.media import MediaError, TaskValueLoader
from skcal.text_embedding import sentence_embeddings

IMAGE_CONFIG = """<View><Image name="photo" value="$image"/>
<Choices name="colour" toName="photo"><Choice value="Red"/><Choice value="Blue"/></Choices></View>"""
TEXTS = ["A short sentence.", "Another, rather longer sentence about films and books.", "ok"]


def data_uri(colour, size=12, mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, (size, size), colour).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_sentence_embedder_matches_the_cached_embeddings(tmp_path):
    expected = sentence_embeddings(TEXTS, cache_dir=tmp_path, progress=False)
    embedder = SentenceEmbedder(batch_size=2, cache_size=2)
    np.testing.assert_allclose(embedder.transform(TEXTS), expected, atol=1e-5)
    assert embedder.cache_info()["texts"] == 2  # trimmed to cache_size
    np.testing.assert_allclose(embedder.transform(TEXTS[::-1]), expected[::-1], atol=1e-5)
    with pytest.raises(TypeError, match="item 1 is int"):
        embedder.transform(["fine", 3])
    results = [None] * 4

    def embed(slot):
        results[slot] = SentenceEmbedder.transform(embedder, TEXTS + [f"text {slot}"])

    threads = [threading.Thread(target=embed, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result[:3], expected, atol=1e-5)


RACE = textwrap.dedent(
    """
    import json, threading
    from skcal.serve.factories import SentenceEmbedder
    embedders = [SentenceEmbedder() for _ in range(4)]
    calls = [(embedders[i % 4], i < 4) for i in range(10)]  # load() and transform() at once, as at a restart
    barrier = threading.Barrier(len(calls))
    errors, shapes = [], []

    def use(embedder, load):
        barrier.wait()
        try:
            shapes.append(list(embedder.load().transform(["a"]).shape) if load else
                          list(embedder.transform(["hello", "world"]).shape))
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=use, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"errors": errors, "shapes": shapes}))
    """
)


def test_loading_the_sentence_encoder_from_many_threads_at_once():
    """The first /predict after a restart raced the worker's warm-up: ImportError 'AutoModel' (17 of 17)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["errors"] == []
    assert sorted(answer["shapes"]) == [[1, 384]] * 4 + [[2, 384]] * 6


def test_long_texts_are_cut_before_tokenising_and_cached_cut():
    """A 20-million-character text was tokenised whole (15.7 s, 1.8 GB) and kept whole as a cache key."""
    embedder = SentenceEmbedder(max_chars=2_000)
    long_text = ("A film about books, long and slow. " * 60_000)[:2_000_000]
    vectors = embedder.transform([long_text, long_text[:2_000] + " different tail"])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # the model reads the first tokens only
    np.testing.assert_allclose(vectors[0], embedder.transform([long_text[:5_000]])[0], atol=1e-6)
    info = embedder.cache_info()
    assert info == {"texts": 1, "characters": 2_000, "max_chars": 2_000}
    default = SentenceEmbedder().load().cache_info()["max_chars"]
    assert default == 256 * 16  # all-MiniLM-L6-v2 reads 256 tokens
    uncut = SentenceEmbedder(max_chars=10**9).transform(TEXTS)  # ordinary texts: the cut changes nothing
    np.testing.assert_allclose(SentenceEmbedder().transform(TEXTS), uncut, atol=1e-6)


def test_a_short_call_is_served_between_the_batches_of_a_long_one():
    """A 1-task /predict waited 17 s behind a 10,000-task one: the encoder was held for the whole call."""
    embedder = SentenceEmbedder(batch_size=8).load()
    many = [f"sentence number {i} about a film" for i in range(800)]  # 100 batches
    order, started = [], threading.Event()
    original = embedder._encode

    def encode(texts, *args):
        started.set()
        order.append(len(texts))
        return original(texts, *args)

    embedder._encode = encode
    long_call = threading.Thread(target=embedder.transform, args=(many,))
    long_call.start()
    assert started.wait(60)
    embedder.transform(["one short text"])
    position, still_running = order.index(1), long_call.is_alive()
    long_call.join()
    assert still_running and len(order) == 101
    assert position < 5, f"the short call waited for {position} batches of the long one"


def test_image_arrays():
    images = [Image.new("RGB", (20, 10), (255, 0, 0)), Image.new("L", (5, 5), 128)]
    rgb = ImageArrays(size=8).transform(images)
    assert rgb.shape == (2, 3, 8, 8) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0, :, 0, 0], [1, 0, 0])
    grey = ImageArrays(size=4, channels=1).transform(images)
    assert grey.shape == (2, 1, 4, 4) and abs(grey[1].mean() - 128 / 255) < 1e-6
    with pytest.raises(TypeError, match="PIL images"):
        ImageArrays().transform([np.zeros((3, 3))])


def test_images_from_data_uris_and_bad_urls():
    loader, config = TaskValueLoader(), parse_labelling_config(IMAGE_CONFIG)
    (image,) = loader.load([data_uri((0, 0, 255))], config)
    assert image.size == (12, 12) and image.getpixel((0, 0)) == (0, 0, 255)
    for url, message in [
        ("data:image/png;base64,%%%", "invalid base64"),
        ("data:image/png,abc", "not a base64 data URI"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "not an image Pillow can decode"),
        ("/data/upload/1/cat.png", "Label Studio server, whose address is unknown"),
        ("ftp://host/cat.png", "not a data URI, an http"),
    ]:
        with pytest.raises(MediaError, match=message):
            loader.load([url], config)


def tiny_image_factory():
    classifier = ContinualActiveClassifier(
        SmallCNN, module__width=4, max_epochs=10, round_epochs=5, batch_size=4, lr=0.05, random_state=0, verbose=0
    )
    return Pipeline([("pixels", ImageArrays(size=8)), ("classifier", classifier)])


def test_an_image_project_end_to_end(tmp_path):
    backend = LabelStudioBackend(tiny_image_factory, tmp_path, train_every=4)
    try:
        backend.setup({"schema": IMAGE_CONFIG, "project": "5.1"})
        colours = [("Red", (230, 20, 20)), ("Blue", (20, 20, 230))] * 2
        for i, (label, colour) in enumerate(colours):
            region = {"from_name": "colour", "to_name": "photo", "type": "choices", "value": {"choices": [label]}}
            backend.webhook({
                "action": "ANNOTATION_CREATED",
                "annotation": {"id": i, "task": i, "result": [region]},
                "task": {"id": i, "data": {"image": data_uri(colour)}},
            })  # fmt: skip
        assert backend.wait_until_idle(60)
        answer = backend.predict({"tasks": [{"id": 9, "data": {"image": data_uri((200, 0, 0), size=30)}}]})
        assert answer["results"][0]["result"][0]["value"]["choices"][0] in ("Red", "Blue")
        assert backend.campaign.classifier.labelled_history_.feature_shape == (3, 8, 8)
        with pytest.raises(ProtocolError, match="invalid base64") as caught:
            backend.predict({"tasks": [{"id": 9, "data": {"image": "data:image/png;base64,%%"}}]})
        assert caught.value.status == 422
    finally:
        backend.close()


def test_built_in_factories():
    text, image = (
        parse_labelling_config(
            '<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/>'
            "</Choices></View>"
        ),
        parse_labelling_config(IMAGE_CONFIG),
    )
    assert isinstance(BUILTIN_FACTORIES["auto"](text).steps[0][1], SentenceEmbedder)
    assert isinstance(BUILTIN_FACTORIES["auto"](image).steps[0][1], ImageArrays)
    for factory in (text_classifier, image_resnet18_classifier, BUILTIN_FACTORIES["image"]):
        assert isinstance(factory(None).steps[-1][1], ContinualActiveClassifier)


def test_factories_by_name():
    assert resolve_factory("text") is text_classifier
    assert resolve_factory("skcal.serve.factories:image_resnet18_classifier") is image_resnet18_classifier
    assert resolve_factory("skcal.serve:factories.text_classifier") is text_classifier
    assert resolve_factory(tiny_image_factory) is tiny_image_factory
    for spec, message in [
        ("", "built-in name"),
        ("nothing", "not a built-in name"),
        ("skcal.nope:f", "cannot import 'skcal.nope'"),
        ("skcal.serve.factories:nope", "has no attribute 'nope'"),
        ("skcal.serve.factories:BUILTIN_FACTORIES", "not a callable"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_factory(spec)
