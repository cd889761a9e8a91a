"""Stored-value codecs and deterministic ids: exact round trips, the standard library's ids."""

from __future__ import annotations

import hashlib
import uuid
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadstream.scoring.ids import uuid5_text
from leadstream.scoring.state import ContactState, event_fingerprint
from leadstream.state.codec import VALUES_DICTIONARY_ID, compress_value, decompress_value, dictionary
from leadstream.state.port import decode_state, encode_contact, stored_address

json_objects = st.dictionaries(
    st.text(max_size=12),
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.integers(-(2**63), 2**63 - 1),
        st.text(max_size=40),
    ),
    max_size=12,
)


@given(json_objects, st.sampled_from(["zstd", "zlib", "none"]))
def test_every_codec_gives_back_the_json_it_was_given(obj, codec):
    import orjson

    raw = orjson.dumps(obj)
    assert decompress_value(compress_value(raw, codec)) == raw


@given(st.binary(max_size=200))
def test_any_bytes_round_trip_through_zstd(raw):
    assert decompress_value(compress_value(raw, "zstd")) == raw


def test_a_value_written_with_an_unknown_dictionary_says_what_to_do():
    import zstandard

    samples = [b'{"a":%d,"b":"%d"}' % (i, i * 7) for i in range(2000)]
    foreign = zstandard.ZstdCompressor(dict_data=zstandard.train_dictionary(1024, samples, dict_id=999))
    with pytest.raises(ValueError, match="dictionary 999"):
        decompress_value(foreign.compress(b'{"a":1}'))


def test_the_shipped_dictionary_has_the_id_the_values_name():
    assert dictionary(VALUES_DICTIONARY_ID).dict_id() == VALUES_DICTIONARY_ID


def test_zlib_values_written_before_zstd_still_read():
    raw = b'{"c":"c1","e":null}'
    assert decompress_value(zlib.compress(raw, 1)) == raw


@given(st.text(max_size=80))
def test_uuid5_text_is_the_standard_librarys(name):
    namespace = uuid.UUID("6f1c3a52-3f0e-4b8e-9a57-5c1d2f6e7a10")
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


@given(st.text(max_size=200))
def test_an_event_fingerprint_is_the_first_six_bytes_of_its_ids_blake2b(event_id):
    # Stored states hold fingerprints of the events they saw: the function must never change.
    expected = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=6).digest(), "big")
    assert event_fingerprint(event_id) == expected


def test_an_event_fingerprint_is_the_one_stored_states_hold():
    assert event_fingerprint("5a15b50a-c9d2-54fa-902d-88ff36957cc6") == 239506513413659


@given(
    st.one_of(st.none(), st.emails()),
    st.one_of(st.none(), st.text(max_size=40)),
    st.sampled_from(["none", "zstd", "zlib"]),
)
def test_a_stored_address_is_the_one_the_decoded_state_gives(email, typed, codec):
    """A buying-group handoff reads its members' addresses from their stored states without
    building them: the address as typed, else as normalised, as the decoded state has them."""
    state = ContactState("c", email=email, email_display=typed)
    stored = encode_contact(state, codec)
    decoded = decode_state(stored)
    assert stored_address(stored) == (decoded.email_display or decoded.email)
