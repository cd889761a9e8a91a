"""Journal names, journal entries and timer entries write a time as repr writes it, by a faster
path for event times."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.engine.outbox import journal_timer_entry, timer_entries
from leadstream.state.port import decode_journal, encode_journal, float_text, journal_key, journal_name


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.integers(0, 2**40 * 1000).map(lambda ms: ms / 1000),  # whole milliseconds
        st.integers(0, 2**33 * 10**6).map(lambda us: us / 10**6),  # whole microseconds: the fast path
        st.integers(10**6, 2**32 * 10**6).map(lambda us: us / 10**6 + 1e-8),  # near them, not on them
        st.floats(min_value=0, allow_nan=False, allow_infinity=False),
        st.floats(max_value=0, allow_nan=False, allow_infinity=False),
        st.sampled_from(
            [
                0.0,
                -0.0,
                0.001,
                0.0001,
                1e-5,
                1e-6,
                0.999999,
                1.0,
                1.000001,
                2.0**32,
                2.0**32 - 1e-6,
                2.0**40,
                1e16,
                1767225600.1,
                1788777988.984047,
                1788777988.98405,
            ]
        ),
    )
)
def test_a_time_is_written_as_repr_writes_it(value):
    assert float_text(value) == repr(value)


@given(
    st.integers(0, 4_102_444_800_000).map(lambda ms: ms / 1000),
    st.text(min_size=1).filter(lambda t: "\t" not in t),
)
def test_a_journal_name_reads_back_as_its_key(at, point_id):
    key = (at, 0, point_id, 2, "s")
    assert journal_key(journal_name(key)) == key


_TIMES = st.one_of(
    st.integers(0, 2**40 * 1000).map(lambda ms: ms / 1000),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.none(), _TIMES), st.binary(max_size=64), st.sampled_from(["none", "zstd"]))
def test_a_journal_entry_writes_its_record_time_as_repr_and_reads_back(record_time, payload, codec):
    raw = encode_journal(record_time, payload, codec)
    assert raw.split(b"\n", 1)[0].split(b"\t")[0] == repr(record_time).encode()
    assert decode_journal(raw) == (record_time, payload)


@given(_TIMES)
def test_a_timer_entry_writes_its_due_time_as_repr(due):
    assert list(timer_entries({}, {"sla": due}).values()) == [repr(due).encode()]
    assert list(journal_timer_entry(due).values()) == [repr(due).encode()]
