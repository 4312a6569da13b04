"""Phone numbers read against a workspace's region and written in E.164."""

import pytest

from helpdesk.customers.phones import is_region, to_e164

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        ("(201) 555-0123", "US", "+12015550123"),
        ("201.555.0123", "US", "+12015550123"),
        ("+1 201 555 0123", "GB", "+12015550123"),  # a country code wins over the region
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("030 123456", "DE", "+4930123456"),
    ],
)
def test_a_valid_number_is_stored_in_e164(written: str, region: str, e164: str) -> None:
    assert to_e164(written, region) == e164


@pytest.mark.parametrize(
    ("written", "region", "sentence"),
    [
        ("call me", "US", "This is not a phone number; write it as dialled in US"),
        ("12345", "US", "This is not a valid phone number in US;"),
        ("020 7946 0958", "US", "This is not a valid phone number in US;"),
        ("+1 555", "DE", "This is not a valid phone number in +1 (US, AG, AI);"),
    ],
)
def test_an_invalid_number_is_refused_with_a_sentence_that_says_how_to_write_it(
    written: str, region: str, sentence: str
) -> None:
    with pytest.raises(ValueError, match="country code") as refused:
        to_e164(written, region)
    assert str(refused.value).startswith(sentence)
    assert written not in str(refused.value)


def test_regions_are_iso_codes_phonenumbers_knows() -> None:
    assert [is_region(code) for code in ("US", "GB", "DE", "us", "XX", "USA")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
