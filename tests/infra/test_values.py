"""The one value walker and secret wrapper (infra/values.py), without Pulumi."""

from __future__ import annotations

import json

from pulumi.runtime import rpc

from infra.values import Secret, leaves, mark_secrets, plain, redact, reveal, walk

TOKEN = "hf_WALKERMARKER_42"


def wire(value):
    """A secret as the engine sends it (pulumi's rpc wire form)."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def test_walk_maps_every_leaf_and_keeps_the_shape():
    value = {"a": [1, (2, {"b": 3})], "c": {"d": 4}}
    assert walk(value, lambda v: v * 10) == {"a": [10, [20, {"b": 30}]], "c": {"d": 40}}


def test_walk_drops_the_keys_it_is_told_to():
    value = {"keep": 1, "__drop": 2, "nested": {"__drop": 3, "x": 4}}
    kept = walk(value, lambda v: v, keep_key=lambda k: not k.startswith("__"))
    assert kept == {"keep": 1, "nested": {"x": 4}}


def test_plain_copies_dict_subclasses_into_dicts():
    class Output(dict):
        pass

    copied = plain([Output(a=Output(b=1))])
    assert copied == [{"a": {"b": 1}}]
    assert type(copied[0]) is dict and type(copied[0]["a"]) is dict


def test_a_secret_never_shows_in_repr_str_or_json():
    secret = Secret({"token": TOKEN})
    assert repr(secret) == "[secret]"
    assert str(secret) == "[secret]"
    assert TOKEN not in json.dumps({"x": secret}, default=str)
    assert TOKEN not in repr([secret, {"k": secret}])


def test_a_secret_is_as_truthy_as_its_value_and_equal_by_value():
    assert not Secret("")
    assert Secret("x")
    assert Secret("x") == Secret("x")
    assert Secret("x") != Secret("y")
    assert Secret("x") != "x"
    assert len({Secret("x"), Secret("x")}) == 1


def test_wire_secrets_become_secrets_and_reveal_unwraps_both_forms():
    marked = mark_secrets({"env": [{"name": "HF_TOKEN", "value": wire(TOKEN)}]})
    assert marked["env"][0]["value"] == Secret(TOKEN)
    assert reveal(marked) == {"env": [{"name": "HF_TOKEN", "value": TOKEN}]}
    assert reveal({"a": wire({"b": wire(TOKEN)})}) == {"a": {"b": TOKEN}}


def test_redact_keeps_the_shape_and_hides_every_leaf():
    secret = Secret({"data": {"token": TOKEN, "list": [1, TOKEN]}})
    assert redact(secret) == {"data": {"token": "[secret]", "list": ["[secret]", "[secret]"]}}
    assert redact(Secret(TOKEN)) == "[secret]"
    assert redact(wire(TOKEN)) == "[secret]"


def test_a_walk_does_not_open_a_secret():
    seen = []
    walk({"a": Secret({"b": TOKEN}), "c": wire(TOKEN)}, seen.append)
    assert [type(v) for v in seen] == [Secret, dict]
    assert TOKEN not in repr(seen[0])


def test_leaves_name_paths_and_keep_scalar_lists_whole():
    value = {"a": {"b": 1}, "c": [{"d": 2}, {"d": 3}], "e": [1, 2]}
    assert list(leaves(value)) == [("a.b", 1), ("c[0].d", 2), ("c[1].d", 3), ("e", [1, 2])]
    assert list(leaves(5)) == [("", 5)]
    assert list(leaves({"x": 1}, "top")) == [("top.x", 1)]


def test_leaves_label_list_items_as_told():
    value = {"containers": [{"name": "server", "image": "i"}]}
    paths = dict(leaves(value, label=lambda items: [i["name"] for i in items]))
    assert paths == {"containers[server].name": "server", "containers[server].image": "i"}
