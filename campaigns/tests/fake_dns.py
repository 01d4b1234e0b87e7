"""A fake DNS for tests: dnspython's `dns.resolver.resolve` answering from a dict.

The DNS is the outside world: no test looks a name up for real. conftest.py installs an empty
FakeDNS for every test (the `fake_dns` fixture), where no name exists; a test adds the records
it needs, or makes a lookup fail the way a real one can."""

import dns.resolver


class _TXT:
    """One TXT record as dnspython gives it: its strings of at most 255 bytes."""

    def __init__(self, value: str):
        data = value.encode()
        self.strings = tuple(data[i : i + 255] for i in range(0, len(data), 255)) or (b"",)


class FakeDNS:
    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.errors: dict[str, Exception] = {}
        self.lookups: list[str] = []  # every name asked for, in order

    def add_txt(self, name: str, *values: str) -> None:
        self.txt.setdefault(_key(name), []).extend(values)

    def fail(self, name: str, error: Exception) -> None:
        """Looking `name` up raises `error` (dns.resolver.LifetimeTimeout, NoNameservers…)."""
        self.errors[_key(name)] = error

    def resolve(self, qname, rdtype="A", *args, **kwargs):
        name = _key(str(qname))
        self.lookups.append(name)
        if name in self.errors:
            raise self.errors[name]
        if name not in self.txt:
            raise dns.resolver.NXDOMAIN()
        if str(rdtype).upper() != "TXT":
            raise dns.resolver.NoAnswer()
        return [_TXT(value) for value in self.txt[name]]


def _key(name: str) -> str:
    return name.rstrip(".").lower()
