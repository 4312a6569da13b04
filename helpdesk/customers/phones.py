"""Phone numbers: parsed with ``phonenumbers`` against the workspace's default region, so a
number written as dialled at home, ``(201) 555-0123`` in the US, is accepted, and stored in
E.164 (``+12015550123``), one spelling per number."""

import phonenumbers

DEFAULT_REGION = "US"


def is_region(code: str) -> bool:
    """Whether ``code`` is a region ``phonenumbers`` knows (ISO 3166-1 alpha-2, upper case)."""
    return code in phonenumbers.SUPPORTED_REGIONS


def to_e164(value: str, region: str) -> str:
    """``value`` in E.164, read as dialled in ``region`` unless it starts with ``+``; raises
    ValueError with a sentence a person can act on (without the number: an error response or
    a log line that keeps it would hold personal data)."""
    example = phonenumbers.example_number(region)
    national = (
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        if example is not None
        else None
    )
    how = (
        f"write it as dialled in {region} (e.g. {national}) or with its country code "
        "(e.g. +44 20 7946 0958)"
        if national
        else "write it with its country code (e.g. +44 20 7946 0958)"
    )
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"This is not a phone number; {how}.") from None
    if not phonenumbers.is_valid_number(number):
        where = _where(number, region)
        raise ValueError(f"This is not a valid phone number in {where}; {how}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _where(number: phonenumbers.PhoneNumber, region: str) -> str:
    # The region the number claims (its country code), which may not be the workspace's.
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    if not regions or region in regions:
        return region
    return f"+{number.country_code} ({', '.join(regions[:3])})"
