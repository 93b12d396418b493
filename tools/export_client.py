"""Command that starts an export, follows it with a progress bar, and says where its files and errors.log are.

Usage: python -m tools.export_client [--url URL] [--key KEY] [--partition NAME] [--dry-run]
           (IDENTIFIER ... | --all | --filter KEYWORD=VALUE ... | --request FILE.json)
           (--container-uri URI [--managed-identity] | --connection-string STRING --container NAME)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional
from urllib.parse import quote

from tools.export_api import ApiError, Answer, ExportApi
from tools.export_progress import ExportProgress, summary_lines

URL_VARIABLE, KEY_VARIABLE = "EXPORT_API_URL", "EXPORT_FUNCTION_KEY"
DEFAULT_URL = "http://localhost:7071"
SUCCEEDED = ("succeeded", "completed")
EPILOG = f"""\
the service's URL comes from --url, else {URL_VARIABLE}, else {DEFAULT_URL} (func start);
its function key from --key, else {KEY_VARIABLE} (none is needed locally).
Ctrl-C while an export runs asks whether to cancel it (DELETE); answering no leaves it running.

exit status: 0 the export succeeded (or the dry run answered); 1 it failed or was canceled;
2 it could not start (bad arguments, the service refused the request, or could not be reached);
130 interrupted, the export left running."""


class UsageError(Exception):
    """The arguments do not make a request; the message says what to give."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.export_client", description=__doc__.splitlines()[0],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("identifiers", nargs="*", help="studies, series or instances: study[/series[/sop]]")
    parser.add_argument("--all", action="store_true", help="export every instance of the partition")
    parser.add_argument("--filter", action="append", default=[], metavar="KEYWORD=VALUE",
                        help="export the studies matching QIDO-RS keys, e.g. StudyDate=20240101-20240131")
    parser.add_argument("--request", type=Path, metavar="FILE", help="a JSON request body (flags given replace parts)")
    parser.add_argument("--container-uri", help="the destination container's URL, with a SAS or --managed-identity")
    parser.add_argument("--managed-identity", action="store_true", help="the service writes as its identity")
    parser.add_argument("--connection-string", help="the destination account's connection string")
    parser.add_argument("--container", help="the destination container, with --connection-string")
    parser.add_argument("--partition", help="the data partition to export from (default: Microsoft.Default)")
    parser.add_argument("--dry-run", action="store_true", help="check and count only; nothing is exported")
    parser.add_argument("--url", help=f"the service's base URL (default: ${URL_VARIABLE} or {DEFAULT_URL})")
    parser.add_argument("--key", help=f"a function key (default: ${KEY_VARIABLE})")
    parser.add_argument("--api-version", type=int, choices=(1, 2), default=2)
    parser.add_argument("--interval", type=float, help="seconds between polls (default: the service's Retry-After)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the progress bar (default: when the terminal is interactive)")
    return parser


def _destination(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    if args.container_uri and (args.connection_string or args.container):
        raise UsageError("give --container-uri, or --connection-string with --container, not both")
    if args.container_uri:
        return {"type": "azureBlob", "settings": {"blobContainerUri": args.container_uri,
                                                  "useManagedIdentity": args.managed_identity}}
    if args.connection_string or args.container:
        if not (args.connection_string and args.container):
            raise UsageError("--connection-string and --container go together")
        return {"type": "azureBlob", "settings": {"connectionString": args.connection_string,
                                                  "blobContainerName": args.container}}
    return None


def request_body(args: argparse.Namespace) -> Dict[str, Any]:
    """The request body the arguments describe (a --request file, with the flags given replacing its parts)."""
    try:
        body = json.loads(args.request.read_text(encoding="utf-8")) if args.request else {}
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {args.request} as JSON: {error}") from None
    if not isinstance(body, dict):
        raise UsageError(f"{args.request} must hold a JSON object (a request body)")
    if sum((bool(args.identifiers), args.all, bool(args.filter))) > 1:
        raise UsageError("give identifiers, --all or --filter, not several")
    if args.identifiers:
        body["source"] = {"type": "identifiers", "settings": {"values": args.identifiers}}
    elif args.filter:
        pairs = [item.partition("=") for item in args.filter]
        if any(not key or not sep for key, sep, _ in pairs):
            raise UsageError("--filter takes KEYWORD=VALUE, e.g. --filter ModalitiesInStudy=CT")
        body["source"] = {"type": "query", "settings": {"filters": {key: value for key, _, value in pairs}}}
    elif args.all:
        body.pop("source", None)
    elif not args.request:
        raise UsageError("name what to export: identifiers, --all, --filter KEYWORD=VALUE or --request FILE")
    destination = _destination(args)
    if destination:
        body["destination"] = destination
    elif "destination" not in body:
        raise UsageError("name the destination: --container-uri, or --connection-string with --container")
    return body


def _offer_cancel(api: ExportApi, started: Dict[str, Any], ask: Callable[[str], str]) -> Optional[Dict[str, Any]]:
    """Ask whether to cancel; on yes, DELETE and return the final status; None when the export goes on."""
    try:
        reply = ask(f"\nCancel export {started['id']}? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        reply = ""
    if reply.strip().lower() not in ("y", "yes"):
        print(f"The export goes on; its status: {started['href']}")
        return None
    answer = api.call("DELETE", started["href"])
    if answer.status == 409:  # it ended first
        answer = api.call("GET", started["href"])
    if answer.status != 200:
        raise ApiError(f"the cancel was refused ({answer.status}): {answer.message()}")
    return answer.body


def follow(api: ExportApi, started: Dict[str, Any], interval: Optional[float], progress: Optional[bool],
           ask: Callable[[str], str], sleep: Callable[[float], None]) -> Optional[Dict[str, Any]]:
    """Poll the export until it ends, showing its progress; Ctrl-C offers to cancel. The final status, or None."""
    bar = ExportProgress(started["id"], progress)
    try:
        while True:
            answer = api.call("GET", started["href"])
            if answer.status not in (200, 202):
                raise ApiError(f"the status answered {answer.status}: {answer.message()}")
            bar.show(answer.body)
            if answer.status == 200:
                return answer.body
            sleep(interval if interval is not None else answer.retry_after or 5)
    except KeyboardInterrupt:
        bar.close()
        return _offer_cancel(api, started, ask)
    finally:
        bar.close()


def _dry_run_lines(answer: Answer) -> List[str]:
    counts = answer.body
    size = "unknown size" if counts.get("totalBytes") is None else f"{counts['totalBytes']:,} bytes"
    return [f"Dry run ({counts.get('source')}, partition {counts.get('partition')}): would export "
            f"{counts.get('instances')} instances in {counts.get('series')} series of {counts.get('studies')} "
            f"studies, {size}; {counts.get('skipped')} would be skipped. Nothing was exported."]


def main(argv: Optional[List[str]] = None, env: Mapping[str, str] = os.environ, ask: Callable[[str], str] = input,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Run the command; the exit status says how the export ended (see EPILOG)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        body = request_body(args)
    except UsageError as error:
        parser.error(str(error))
    api = ExportApi(args.url or env.get(URL_VARIABLE) or DEFAULT_URL, args.api_version,
                    args.key or env.get(KEY_VARIABLE) or None)
    path = f"/partitions/{quote(args.partition, safe='')}/export" if args.partition else "/export"
    try:
        answer = api.call("POST", api.url(path) + ("?dryRun=true" if args.dry_run else ""), body)
        if answer.status not in (200, 202):
            print(f"The export was not started ({answer.status}): {answer.message()}", file=sys.stderr)
            return 2
        if args.dry_run:
            print("\n".join(_dry_run_lines(answer)))
            return 0
        print(f"Started export {answer.body['id']}: {answer.body['href']}")
        state = follow(api, answer.body, args.interval, args.progress, ask, sleep)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 2
    if state is None:
        return 130
    print("\n".join(summary_lines(state)))
    return 0 if state.get("status") in SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
