"""The worker warns when its input topics cannot keep a contact's events on one worker."""

from __future__ import annotations

from leadstream.kafka.topics import uneven_inputs


def test_input_topics_with_different_partition_counts_are_named_with_their_counts():
    inputs = ["ls.page_views", "ls.forms", "ls.webinars"]
    assert uneven_inputs({"ls.page_views": 4, "ls.forms": 8, "ls.webinars": 4}, inputs) == (
        "ls.page_views 4, ls.forms 8, ls.webinars 4"
    )


def test_even_inputs_missing_ones_and_other_topics_say_nothing():
    inputs = ["ls.page_views", "ls.forms", "ls.webinars"]
    # Other topics (the registry has one partition) and topics not made yet do not count.
    assert uneven_inputs({"ls.page_views": 4, "ls.forms": 4, "ls.models": 1}, inputs) == ""
    assert uneven_inputs({}, inputs) == ""
