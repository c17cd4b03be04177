"""Label Studio labelling configs: find the ``Choices`` control a classifier answers, and its classes.

A Label Studio project describes its labelling interface in XML::

    <View>
      <Text name="text" value="$text"/>
      <Choices name="sentiment" toName="text" choice="single">
        <Choice value="Positive"/>
        <Choice value="Negative"/>
      </Choices>
    </View>

:func:`parse_labelling_config` finds the first ``Choices`` control (or the one
named) whose ``toName`` is a ``Text`` or ``Image`` object, and returns what the
backend needs: the control's and the object's names (a prediction's
``from_name`` and ``to_name``), the task-data key the object shows (``text``
for ``value="$text"``) and the class names, in the config's order. A choice's
``alias``, when it has one, is what annotations store, so it is the class name.
Every class is known from the config, so a class first labelled late was
declared from the start.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

#: The object tags a classifier can read, and what the backend hands the model for each.
OBJECT_TAGS = ("Text", "Image")
#: Longest labelling config accepted, in characters.
MAX_CONFIG_LENGTH = 1_000_000


class LabellingConfigError(ValueError):
    """A labelling config that is not XML, or has no single-choice ``Choices`` over a ``Text`` or ``Image``."""


@dataclass(frozen=True)
class LabellingConfig:
    """What the backend reads from a labelling config.

    Attributes
    ----------
    control : str
        The ``Choices`` control's ``name``: a prediction's ``from_name``.
    object_name : str
        The object it labels: a prediction's ``to_name``.
    object_type : {"Text", "Image"}
        That object's tag.
    data_key : str
        The task-data field the object shows (``value="$text"`` gives ``"text"``).
    classes : tuple of str
        The choices, in the config's order (a choice's ``alias`` if it has one).
    xml : str
        The config itself.
    """

    control: str
    object_name: str
    object_type: str
    data_key: str
    classes: tuple[str, ...]
    xml: str

    def describe(self) -> dict:
        """Return the config as plain values (for ``/health`` and logs).

        Returns
        -------
        dict
            The fields, the XML left out.
        """
        return {
            "control": self.control,
            "object": self.object_name,
            "object_type": self.object_type,
            "data_key": self.data_key,
            "classes": list(self.classes),
        }


def _tag(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def parse_labelling_config(xml: str, control: str | None = None) -> LabellingConfig:
    """Read the classification control of a Label Studio labelling config.

    Parameters
    ----------
    xml : str
        The labelling config (``<View>...</View>``).
    control : str, optional
        The ``name`` of the ``Choices`` control to use; by default the first
        one whose ``toName`` is a ``Text`` or ``Image`` object.

    Returns
    -------
    LabellingConfig
        What the backend needs of the config.

    Raises
    ------
    LabellingConfigError
        If the text is not valid Unicode (a lone surrogate) or not XML (or
        declares a DOCTYPE or entities, which are refused), has no such control (or not the one named), the control
        allows several choices, its object's ``value`` is not a ``$field``,
        or the choices are fewer than two or repeated.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise LabellingConfigError("the labelling config is empty; it must be Label Studio XML (<View>...</View>).")
    if len(xml) > MAX_CONFIG_LENGTH:
        raise LabellingConfigError(f"the labelling config has {len(xml)} characters, more than {MAX_CONFIG_LENGTH}.")
    if not xml.isascii():
        try:
            xml.encode("utf-8")
        except UnicodeEncodeError as error:  # JSON's "\ud800": a lone surrogate, which no XML parser takes
            raise LabellingConfigError(
                f"the labelling config is not valid Unicode text: {error.reason} at character {error.start}."
            ) from None
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise LabellingConfigError("the labelling config declares a DOCTYPE or entities, which are not accepted.")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise LabellingConfigError(f"the labelling config is not well-formed XML: {error}") from None
    objects = {element.get("name"): element for element in root.iter() if _tag(element) in OBJECT_TAGS}
    candidates = [element for element in root.iter() if _tag(element) == "Choices"]
    if control is not None:
        candidates = [element for element in candidates if element.get("name") == control]
        if not candidates:
            raise LabellingConfigError(f"the labelling config has no <Choices name={control!r}> control.")
    usable = [element for element in candidates if _first_target(element) in objects]
    if not usable:
        found = [f"{element.get('name')!r} -> {element.get('toName')!r}" for element in candidates]
        raise LabellingConfigError(
            "the labelling config has no <Choices> control whose toName is a <Text> or <Image> object "
            f"(Choices found: {found or 'none'}; Text/Image objects: {sorted(filter(None, objects))})."
        )
    choices = usable[0]
    name = choices.get("name")
    if not name:
        raise LabellingConfigError("the <Choices> control has no name attribute.")
    if (choices.get("choice") or "single").lower() not in ("single", "single-radio"):
        raise LabellingConfigError(
            f"<Choices name={name!r}> has choice={choices.get('choice')!r}; skcal serve classifies into one class, "
            'so it needs choice="single" or "single-radio".'
        )
    target = objects[_first_target(choices)]
    value = target.get("value") or ""
    if not value.startswith("$") or len(value) < 2:
        raise LabellingConfigError(
            f'<{_tag(target)} name={target.get("name")!r}> has value={value!r}; expected a task field such as "$text".'
        )
    classes = tuple(
        (element.get("alias") or element.get("value") or "").strip()
        for element in choices.iter()
        if _tag(element) == "Choice"
    )
    if any(not label for label in classes):
        raise LabellingConfigError(f"<Choices name={name!r}> has a <Choice> without a value.")
    repeated = sorted({label for label in classes if classes.count(label) > 1})
    if repeated:
        raise LabellingConfigError(f"<Choices name={name!r}> repeats the choice(s) {repeated}.")
    if len(classes) < 2:
        raise LabellingConfigError(f"<Choices name={name!r}> has {len(classes)} choice(s); a classifier needs two.")
    return LabellingConfig(
        control=name,
        object_name=target.get("name"),
        object_type=_tag(target),
        data_key=value[1:],
        classes=classes,
        xml=xml,
    )


def _first_target(choices: ElementTree.Element) -> str | None:
    """Return the first object a control's ``toName`` names (it may list several, comma-separated)."""
    to_name = choices.get("toName") or ""
    return to_name.split(",")[0].strip() or None


__all__ = ["OBJECT_TAGS", "LabellingConfig", "LabellingConfigError", "parse_labelling_config"]
