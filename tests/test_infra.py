"""The deployment template (azure.yaml, infra/): it parses, passes checkov's policies, and sets what the code reads.

pycep-parser and checkov live in .venv-infra (requirements-infra.txt, created by scripts/test): their pins conflict with
the test tools', so they run as subprocesses, without network where the machine allows a network namespace.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
INFRA_BIN = ROOT / ".venv-infra" / "bin"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
RUNTIME_SOURCES = [ROOT / "function_app.py"] + sorted(
    path for package in ("orchestrators", "activities", "shared") for path in (ROOT / package).rglob("*.py"))
TOOL_TIMEOUT_SECONDS = 300

# Settings the template sets for the Functions host, the Durable extension or Application Insights, not for our code.
HOST_SETTINGS = {
    "AzureWebJobsStorage__queueServiceUri",  # the host and the Durable extension (queues)
    "AzureWebJobsStorage__tableServiceUri",  # the Durable extension (instance and history tables)
    "AzureWebJobsStorage__credential",  # the host: managedidentity
    "APPLICATIONINSIGHTS_CONNECTION_STRING",  # the host's telemetry
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # telemetry sent with the app identity's Entra ID token
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",  # the Durable extension, once host.json names it (docs/deploy.md)
}

# What the app identity may do, and nothing more (role definition ids are Azure's built-in roles); the identity for
# destinations holds none.
APP_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "0ad04412-c4d5-4796-b79c-f76d14c8d402": "Durable Task Data Contributor",
}

_PARSE_SCRIPT = r"""
import json, sys
from pathlib import Path
from pycep import BicepParser
result = {}
for name in sys.argv[1:]:
    try:
        result[name] = {"tree": BicepParser().parse(file_path=Path(name))}
    except Exception as error:
        result[name] = {"error": f"{type(error).__name__}: {error}"}
json.dump(result, sys.stdout, default=str)
"""


def _infra_tool(name: str) -> str:
    path = INFRA_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: bash scripts/test creates .venv-infra and installs requirements-infra.txt.")
    return str(path)


@lru_cache(maxsize=None)
def _network_namespace_prefix() -> Tuple[str, ...]:
    """`unshare -n` when this machine lets us run a command without any network, so the tools provably stay offline."""
    try:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ("unshare", "-n") if probe.returncode == 0 else ()


def _run_offline(command: List[str]) -> subprocess.CompletedProcess:
    """Run an infra tool from the repository root, checkov told not to fetch its policy mapping (BC_SKIP_MAPPING)."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    return subprocess.run([*_network_namespace_prefix(), *command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def parsed() -> Dict[str, Dict[str, Any]]:
    """Each Bicep file (relative path) → {"tree": pycep's JSON} or {"error": why it did not parse}."""
    names = [str(path.relative_to(ROOT)) for path in BICEP_FILES]
    done = _run_offline([_infra_tool("python"), "-c", _PARSE_SCRIPT, *names])
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def trees(parsed: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The parse trees of the Bicep files that parsed."""
    return {name: result["tree"] for name, result in parsed.items() if "tree" in result}


def _config(resource: Dict[str, Any]) -> Dict[str, Any]:
    """A resource's body, under its `if (...)` when it is conditional."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def _resources(trees: Dict[str, Dict[str, Any]], resource_type: str) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    for file, tree in trees.items():
        for name, resource in tree.get("resources", {}).items():
            if resource["type"].lower() == resource_type.lower() and not resource.get("existing"):
                yield file, name, resource


def _setting_names(node: Any, variables: Dict[str, Any], where: str) -> Set[str]:
    """The names in an appSettings expression: literal lists, variables, concat/union and both sides of a ternary."""
    if isinstance(node, str) and node in variables:
        return _setting_names(variables[node]["value"], variables, where)
    if isinstance(node, list):
        names: Set[str] = set()
        for item in node:
            if isinstance(item, dict) and "name" in item:
                names.add(item["name"])
            else:
                names |= _setting_names(item, variables, where)
        return names
    if isinstance(node, dict) and node.get("function", {}).get("type") in ("concat", "union"):
        return set().union(*(_setting_names(arg, variables, where) for arg in node["function"]["parameters"].values()))
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "conditional":
        operands = node["operator"]["operands"]
        return _setting_names(operands["true_value"], variables, where) | _setting_names(operands["false_value"],
                                                                                         variables, where)
    raise AssertionError(f"{where}: cannot follow this appSettings expression to setting names: {node!r}")


def _template_settings(trees: Dict[str, Dict[str, Any]]) -> Set[str]:
    names: Set[str] = set()
    sites = list(_resources(trees, "Microsoft.Web/sites"))
    assert sites, "no Microsoft.Web/sites resource in infra/"
    for file, name, site in sites:
        app_settings = _config(site)["properties"]["siteConfig"]["appSettings"]
        names |= _setting_names(app_settings, trees[file].get("variables", {}), f"{file}: {name}")
    return names


def _site_setting_values(trees: Dict[str, Dict[str, Any]]) -> Dict[str, Set[str]]:
    """Setting name → every value literal the template writes for it."""
    values: Dict[str, Set[str]] = {}
    for tree in trees.values():
        for variable in tree.get("variables", {}).values():
            if isinstance(variable["value"], list):
                for item in variable["value"]:
                    if isinstance(item, dict) and set(item) == {"name", "value"}:
                        values.setdefault(item["name"], set()).add(str(item["value"]))
    return values


# --- the settings the code reads ------------------------------------------------------------------------------------

def _is_environment(node: ast.AST) -> bool:
    """`env`, `environ` or `os.environ`: the mappings the code reads app settings from."""
    if isinstance(node, ast.Name):
        return node.id in ("env", "environ")
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _setting_key(node: ast.AST) -> Optional[ast.AST]:
    """The key expression of an app setting read, if `node` is one."""
    if isinstance(node, ast.Subscript) and _is_environment(node.value):
        return node.slice
    if isinstance(node, ast.Call) and node.args:
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr == "get" and _is_environment(function.value):
            return node.args[0]
        if isinstance(function, ast.Attribute) and function.attr == "getenv":
            return node.args[0]
    return None


def _call_name(call: ast.Call) -> Optional[str]:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _module_constants(trees: List[ast.Module]) -> Dict[str, Set[str]]:
    """Name → the texts of module-level `NAME = "text"` assignments across `trees` (a constant may be imported)."""
    constants: Dict[str, Set[str]] = {}
    for tree in trees:
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                target, value = statement.target, statement.value
            else:
                continue
            if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                constants.setdefault(target.id, set()).add(value.value)
    return constants


def settings_read_by_code(sources: List[Path] = RUNTIME_SOURCES) -> Set[str]:
    """Every app setting name `sources` read: names held by module-level constants resolved (env.get(KEY_SETTING)),
    names held by parameters expanded through the calls of their function."""
    names: Set[str] = set()
    templates = []  # (function, parameter, prefix, suffix, where)
    calls: Dict[str, List[ast.Call]] = {}
    parsed_sources = [(source, ast.parse(source.read_text(encoding="utf-8"), filename=str(source)))
                      for source in sources]
    constants = _module_constants([tree for _, tree in parsed_sources])
    for source, tree in parsed_sources:
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node):
                calls.setdefault(_call_name(node), []).append(node)
            key = _setting_key(node)
            if key is None:
                continue
            where = f"{source.name}:{node.lineno}"
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
                continue
            # A name held by a module-level constant or by a parameter, alone (env[name]) or in an f-string
            # (env[f"{name}__clientId"]).
            parts = key.values if isinstance(key, ast.JoinedStr) else [ast.FormattedValue(value=key)]
            holes = [i for i, part in enumerate(parts) if isinstance(part, ast.FormattedValue)]
            assert len(holes) == 1 and isinstance(parts[holes[0]].value, ast.Name), \
                f"{where}: cannot tell which app setting this reads: {ast.unparse(key)}"
            hole = parts[holes[0]].value.id
            text = [part.value if isinstance(part, ast.Constant) else "" for part in parts]
            prefix, suffix = "".join(text[:holes[0]]), "".join(text[holes[0] + 1:])
            function = node
            while not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                function = parents[function]
            parameters = [] if isinstance(function, ast.Module) else [
                a.arg for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs]
            if hole not in parameters and hole in constants:
                assert len(constants[hole]) == 1, \
                    f"{where}: {hole} holds different texts in different modules: {sorted(constants[hole])}"
                names.add(f"{prefix}{next(iter(constants[hole]))}{suffix}")
                continue
            assert not isinstance(function, ast.Module), f"{where}: cannot tell which app setting this reads"
            templates.append((function, hole, prefix, suffix, where))
    for function, parameter, prefix, suffix, where in templates:
        positions = [a.arg for a in function.args.args]
        assert parameter in positions, f"{where}: the setting name comes from {parameter}, not a parameter of " \
                                       f"{function.name}: cannot tell which app setting this reads"
        index = positions.index(parameter)
        bound = 1 if positions[0] in ("self", "cls") else 0
        expanded = set()
        for call in calls.get(function.name, []):
            offset = bound if isinstance(call.func, ast.Attribute) else 0
            by_name = {keyword.arg: keyword.value for keyword in call.keywords}
            argument = call.args[index - offset] if len(call.args) > index - offset else by_name.get(parameter)
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                expanded.add(f"{prefix}{argument.value}{suffix}")
        assert expanded, f"{where}: no call of {function.name} names the setting {prefix}{{{parameter}}}{suffix}"
        names |= expanded
    return names


# --- the settings the documentation calls optional -----------------------------------------------------------------

def _markdown_tables(text: str) -> Iterator[Tuple[List[str], List[str]]]:
    """(header cells, row cells) of every row of every table in a Markdown text."""
    header: Optional[List[str]] = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        if header is None:
            header = [cell.lower() for cell in cells]
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells if cell):
            yield header, cells


def _row_says_optional(header: List[str], cells: List[str]) -> bool:
    """A settings row is optional unless its required/default column says the setting is required."""
    for column, title in enumerate(header):
        cell = cells[column].lower() if column < len(cells) else ""
        if "required" in title:
            return cell in ("", "no", "optional", "—", "-") or cell.startswith(("no", "optional"))
        if "default" in title:
            return "required" not in cell
    return "required" not in " ".join(cells[1:]).lower()


def settings_documented_as_optional() -> Set[str]:
    """Settings named (in backticks) in the first cell of a table row of README.md or docs/, not marked required."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    optional: Set[str] = set()
    for document in documents:
        if not document.exists():
            continue
        for header, cells in _markdown_tables(document.read_text(encoding="utf-8")):
            if _row_says_optional(header, cells):
                optional |= set(re.findall(r"`([A-Za-z][A-Za-z0-9_]*)`", cells[0]))
    return optional


# --- the tests -----------------------------------------------------------------------------------------------------

def test_every_bicep_file_parses_with_pycep(parsed):
    assert "infra/main.bicep" in parsed
    assert len(parsed) == len(BICEP_FILES) >= 2
    assert {name: result["error"] for name, result in parsed.items() if "error" in result} == {}


def test_checkov_finds_no_failed_policy_and_every_skip_states_its_reason():
    done = _run_offline([_infra_tool("checkov"), "--framework", "bicep", "--skip-download", "--directory", "infra",
                         "--output", "json"])
    assert done.returncode in (0, 1), done.stderr[-4000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    bicep = [report for report in reports if report.get("check_type") == "bicep"]
    assert len(bicep) == 1, done.stdout[:2000]
    summary, results = bicep[0]["summary"], bicep[0]["results"]
    failed = [f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
              for check in results["failed_checks"]]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0 and summary["resource_count"] >= len(BICEP_FILES)
    unexplained = [f"{c['check_id']} {c['resource']}" for c in results["skipped_checks"]
                   if len((c.get("check_result") or {}).get("suppress_comment", "").strip()) < 20]
    assert unexplained == []


def test_settings_scan_sees_reads_through_helpers_and_formatted_names():
    read = settings_read_by_code()
    assert {"EXPORT_SEALING_KEY", "EXPORT_BATCH_SIZE", "DICOMWEB_URL", "DICOM_STORE", "DICOM_STORE__blobServiceUri",
            "DICOM_STORE__clientId", "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__clientId",
            "EXPORT_DEID_KEY"} <= read  # the last through a constant imported from another module (KEY_SETTING)


def test_settings_scan_finds_a_new_setting_whichever_way_the_code_reads_it(tmp_path):
    module = tmp_path / "new_settings.py"
    module.write_text(
        "import os\n"
        "def read(env=os.environ):\n"
        "    return env.get('A_GET'), env['A_INDEX'], os.environ.get('A_OS'), os.getenv('A_GETENV'), "
        "_number(env, 'A_HELPER', 1)\n"
        "def _number(env, name, default):\n"
        "    return int(env.get(name) or default)\n"
        "class Store:\n"
        "    @classmethod\n"
        "    def _account(cls, env, name):\n"
        "        return env.get(f'{name}__blobServiceUri')\n"
        "    @classmethod\n"
        "    def load(cls, env):\n"
        "        return cls._account(env, 'A_ACCOUNT')\n", encoding="utf-8")
    assert settings_read_by_code([module]) == {"A_GET", "A_INDEX", "A_OS", "A_GETENV", "A_HELPER",
                                               "A_ACCOUNT__blobServiceUri"}


def test_settings_scan_resolves_names_held_by_module_constants_but_not_parameters_shadowing_them(tmp_path):
    names = tmp_path / "names.py"
    names.write_text("KEY_SETTING = 'A_CONSTANT'\nPREFIX: str = 'A_PREFIX'\nNOT_A_NAME = 3\n", encoding="utf-8")
    reader = tmp_path / "reader.py"
    reader.write_text(
        "import os\n"
        "from names import KEY_SETTING, PREFIX\n"
        "MODULE_LEVEL = os.environ.get(KEY_SETTING)\n"
        "def read(env=os.environ):\n"
        "    return env.get(KEY_SETTING), os.getenv(f'{PREFIX}__clientId'), _text(env, 'A_SHADOWED')\n"
        "def _text(env, KEY_SETTING):\n"
        "    return env.get(KEY_SETTING)\n", encoding="utf-8")
    assert settings_read_by_code([names, reader]) == {"A_CONSTANT", "A_PREFIX__clientId", "A_SHADOWED"}
    ambiguous = tmp_path / "other_names.py"
    ambiguous.write_text("KEY_SETTING = 'ANOTHER'\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="KEY_SETTING holds different texts in different modules"):
        settings_read_by_code([names, ambiguous, reader])


def test_template_sets_every_setting_the_code_reads_or_the_docs_call_it_optional(trees):
    template = _template_settings(trees)
    optional = settings_documented_as_optional()
    # A connection-string setting is covered when the template sets its identity-based form, NAME__blobServiceUri.
    uncovered = sorted(name for name in settings_read_by_code()
                       if name not in template and f"{name}__blobServiceUri" not in template and name not in optional)
    assert uncovered == [], (f"set these in infra/modules/function-app.bicep, or document them as optional in the "
                             f"settings table (README.md or docs/): {uncovered}")


def test_template_sets_no_setting_that_neither_the_code_nor_the_host_reads(trees):
    unread = sorted(_template_settings(trees) - settings_read_by_code() - HOST_SETTINGS)
    assert unread == []


def test_function_app_runs_python_3_11_on_flex_consumption_as_the_user_assigned_identity(trees):
    (_, _, plan), = _resources(trees, "Microsoft.Web/serverfarms")
    assert _config(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    (_, _, site), = _resources(trees, "Microsoft.Web/sites")
    config = _config(site)
    assert config["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert config["identity"]["type"] == "UserAssigned"
    assert config["properties"]["keyVaultReferenceIdentity"] == "identityId"
    assert config["properties"]["httpsOnly"] is True


def test_host_storage_is_reached_by_identity_and_the_sealing_key_through_key_vault(trees):
    values = _site_setting_values(trees)
    assert "AzureWebJobsStorage" not in values
    assert values["AzureWebJobsStorage__credential"] == {"managedidentity"}
    assert values["AzureWebJobsStorage__clientId"] == {"identityClientId"}
    assert values["EXPORT_IDENTITY_CLIENT_ID"] == {"destinationIdentityClientId"}
    (sealing_key,) = values["EXPORT_SEALING_KEY"]
    assert sealing_key.startswith("@Microsoft.KeyVault(SecretUri=")
    main = trees["infra/main.bicep"]["parameters"]["exportSealingKey"]
    assert {"type": "secure"} in main["decorators"] and main["default"] is None
    (_, _, vault), = _resources(trees, "Microsoft.KeyVault/vaults")
    assert _config(vault)["properties"]["enableRbacAuthorization"] is True


def _mentions(node: Any, name: str) -> bool:
    """Whether a pycep expression uses the symbol `name` (alone, inside a call or operator, or interpolated)."""
    if isinstance(node, str):
        return node == name or f"${{{name}}}" in node
    if isinstance(node, dict):
        return any(_mentions(value, name) for value in node.values())
    if isinstance(node, list):
        return any(_mentions(item, name) for item in node)
    return False


def _is_not_empty(condition: Any, name: str) -> bool:
    """Whether a pycep condition is exactly `!empty(name)`."""
    return condition == {"operator": {"type": "not", "operands": {
        "bool_value": {"function": {"type": "empty", "parameters": {"item_to_test": name}}}}}}


def _exposes(node: Any, name: str, variables: Dict[str, Any], seen: Tuple[str, ...] = ()) -> bool:
    """Whether a pycep expression can carry the value of `name`, through variables too; `empty(name)` carries only
    whether it is empty, which is not the value."""
    if isinstance(node, dict) and node.get("function", {}).get("type") == "empty":
        return False
    if isinstance(node, str) and node in variables and node not in seen:
        return _exposes(variables[node]["value"], name, variables, seen + (node,))
    if isinstance(node, dict):
        return any(_exposes(value, name, variables, seen) for value in node.values())
    if isinstance(node, list):
        return any(_exposes(item, name, variables, seen) for item in node)
    return _mentions(node, name)


def test_the_deidentification_key_is_an_optional_secure_parameter_kept_in_key_vault_only(trees):
    main = trees["infra/main.bicep"]
    parameter = main["parameters"]["exportDeidKey"]
    assert {"type": "secure"} in parameter["decorators"] and parameter["default"] == ""
    assert _config(main["modules"]["keyVault"])["params"]["deidKey"] == "exportDeidKey"
    # Only the vault receives the key; the app receives the secret's URI.
    holders = sorted(f"{module_name}.{name}" for module_name, module in main["modules"].items()
                     for name, value in _config(module)["params"].items() if _mentions(value, "exportDeidKey"))
    assert holders == ["keyVault.deidKey"]
    assert _config(main["modules"]["functionApp"])["params"]["deidKeySecretUri"] == {"operator": {
        "type": "property_accessor", "operands": {"operand_1": "keyVault", "operand_2": {"operator": {
            "type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": "deidKeySecretUri"}}}}}}
    assert "EXPORT_DEID_KEY_SECRET_URI" in main["outputs"]
    for file, tree in trees.items():
        secure = [name for name, declared in tree.get("parameters", {}).items()
                  if {"type": "secure"} in declared["decorators"]]
        variables = tree.get("variables", {})
        leaked = [(output, name) for output, value in tree.get("outputs", {}).items() for name in secure
                  if _exposes(value["value"], name, variables)]
        assert (file, leaked) == (file, [])

    vault = trees["infra/modules/key-vault.bicep"]
    assert {"type": "secure"} in vault["parameters"]["deidKey"]["decorators"]
    assert vault["parameters"]["deidKey"]["default"] == ""
    assert vault["parameters"]["deidKeySecretName"]["default"] == "export-deid-key"
    # The secret, its role assignment and the URI output exist only when the key is not empty.
    assert _is_not_empty(vault["variables"]["hasDeidKey"]["value"], "deidKey")
    secret = vault["resources"]["deidKeySecret"]
    assert secret["config"].get("condition") == "hasDeidKey"
    assert _config(secret)["properties"]["value"] == "deidKey"
    assert _config(secret)["parent"] == "vault"
    # checkov cannot see inside a conditional resource (its CKV_AZURE_114 is skipped there): check it here.
    assert _config(secret)["properties"]["contentType"]
    role = vault["resources"]["readDeidKey"]
    assert role["config"].get("condition") == "hasDeidKey" and _config(role)["scope"] == "deidKeySecret"
    uri = vault["outputs"]["deidKeySecretUri"]["value"]["operator"]
    assert uri["type"] == "conditional" and uri["operands"]["condition"] == "hasDeidKey"
    assert uri["operands"]["false_value"] == ""
    assert list(_accessed(uri["operands"]["true_value"])) == ["deidKeySecret.properties.secretUri"]  # versionless

    app = trees["infra/modules/function-app.bicep"]
    assert app["parameters"]["deidKeySecretUri"]["default"] == ""
    assert _site_setting_values(trees)["EXPORT_DEID_KEY"] == {"@Microsoft.KeyVault(SecretUri=${deidKeySecretUri})"}
    # The setting exists only when the vault holds the secret: `empty(deidKeySecretUri) ? [] : [the setting]`.
    holding = [name for name, variable in app["variables"].items() if isinstance(variable["value"], list)
               and any(isinstance(item, dict) and item.get("name") == "EXPORT_DEID_KEY" for item in variable["value"])]
    assert holding == ["deidSettings"] and len(app["variables"]["deidSettings"]["value"]) == 1
    guarded = [name for name, variable in app["variables"].items()
               if variable["value"] == {"operator": {"type": "conditional", "operands": {
                   "condition": {"function": {"type": "empty", "parameters": {"item_to_test": "deidKeySecretUri"}}},
                   "true_value": [], "false_value": "deidSettings"}}}]
    assert len(guarded) == 1
    uses = [name for name, variable in app["variables"].items() if _mentions(variable["value"], "deidSettings")]
    assert uses == guarded
    assert _mentions(app["variables"]["appSettings"]["value"], guarded[0])


def test_storage_accounts_refuse_shared_keys_and_anonymous_reads(trees):
    accounts = list(_resources(trees, "Microsoft.Storage/storageAccounts"))
    assert len(accounts) == 2
    for file, name, account in accounts:
        properties = _config(account)["properties"]
        assert (file, name, properties["allowSharedKeyAccess"], properties["allowBlobPublicAccess"],
                properties["minimumTlsVersion"]) == (file, name, False, False, "TLS1_2")


def _accessed(node: Any) -> Iterator[str]:
    """Every `a.b.c` property access in a pycep expression (inside conditionals, calls and the like)."""
    if isinstance(node, dict):
        operator = node.get("operator")
        if isinstance(operator, dict) and operator.get("type") == "property_accessor":
            operands = operator["operands"]
            inner = list(_accessed(operands["operand_2"])) or [str(operands["operand_2"])]
            yield f"{operands['operand_1']}.{inner[0]}"
            return
        for value in node.values():
            yield from _accessed(value)
    elif isinstance(node, list):
        for item in node:
            yield from _accessed(item)


def _identity_references(trees: Dict[str, Dict[str, Any]], identity: str) -> Dict[str, str]:
    """`<module>.<parameter>` → the output of main.bicep's identity module `identity` that the parameter receives."""
    found = {}
    for module_name, module in trees["infra/main.bicep"]["modules"].items():
        for parameter, value in _config(module)["params"].items():
            for access in _accessed(value):
                if access.startswith(f"{identity}.outputs."):
                    found[f"{module_name}.{parameter}"] = access[len(identity) + 1:]
    return found


def _roles_of(trees: Dict[str, Dict[str, Any]], identity: str) -> List[Tuple[str, str, str]]:
    """(role, module, scope) of every role assignment made to the principal of main.bicep's identity module."""
    modules = trees["infra/main.bicep"]["modules"]
    granted = []
    for where, output in _identity_references(trees, identity).items():
        module_name, parameter = where.split(".")
        file = f"infra/{modules[module_name]['detail']['path']}"
        if output != "outputs.principalId":
            continue
        for _, _, assignment in _resources({file: trees[file]}, "Microsoft.Authorization/roleAssignments"):
            properties = _config(assignment)["properties"]
            if properties["principalId"] == parameter:
                role_variable = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
                role = trees[file]["variables"][role_variable]["value"]
                granted.append((APP_ROLES.get(role, role), Path(file).stem, _config(assignment)["scope"]))
    return sorted(granted)


def test_app_identity_holds_exactly_the_roles_it_needs(trees):
    assert _roles_of(trees, "identity") == sorted([
        ("Storage Blob Data Owner", "host-storage", "account"),
        ("Storage Queue Data Contributor", "host-storage", "account"),
        ("Storage Table Data Contributor", "host-storage", "account"),
        ("Storage Blob Data Reader", "dicom-store", "container"),
        ("Storage Blob Delegator", "dicom-store", "account"),
        ("Key Vault Secrets User", "key-vault", "sealingKeySecret"),
        ("Key Vault Secrets User", "key-vault", "deidKeySecret"),
        ("Monitoring Metrics Publisher", "monitoring", "appInsights"),
        ("Durable Task Data Contributor", "durable-task-scheduler", "taskHub"),
    ])


def test_the_identity_for_destinations_holds_no_role_and_is_only_attached_to_the_app(trees):
    assert _roles_of(trees, "destinationIdentity") == []
    assert _identity_references(trees, "destinationIdentity") == {
        "functionApp.destinationIdentityId": "outputs.id",
        "functionApp.destinationIdentityClientId": "outputs.clientId"}
    principals = {_config(assignment)["properties"]["principalId"]
                  for _, _, assignment in _resources(trees, "Microsoft.Authorization/roleAssignments")}
    assert principals == {"appPrincipalId", "loaderPrincipalId"}
    (_, _, site), = _resources(trees, "Microsoft.Web/sites")
    assert sorted(_config(site)["identity"]["userAssignedIdentities"]) == ["'${destinationIdentityId}'",
                                                                          "'${identityId}'"]


def test_azure_yaml_deploys_this_folder_as_a_python_function_app_with_main_bicep(trees):
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = re.search(r"^services:\n  api:\n((?:    .*\n)+)", text, re.MULTILINE)
    assert service is not None
    lines = {line.strip() for line in service.group(1).splitlines()}
    assert {"project: .", "language: python", "host: function"} <= lines
    assert re.search(r"^infra:\n  provider: bicep\n  path: infra\n", text, re.MULTILINE)
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = trees["infra/main.bicep"]["parameters"]
    required = {name for name, parameter in declared.items() if parameter["default"] is None}
    assert set(mapped) <= set(declared)
    assert required <= set(mapped)
    assert mapped["exportSealingKey"] == {"value": "${EXPORT_SEALING_KEY}"}
    # Unset in the azd environment, ${EXPORT_DEID_KEY} leaves the parameter to its default (''): azd prompts only for
    # parameters without a default (Azure/azure-dev#2896).
    assert mapped["exportDeidKey"] == {"value": "${EXPORT_DEID_KEY}"}
    assert declared["exportDeidKey"]["default"] == ""


def test_scheduler_task_hub_is_the_one_host_json_names(trees):
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    hub_name = trees["infra/main.bicep"]["variables"]["taskHubName"]["value"]
    assert hub_name == host["extensions"]["durableTask"]["hubName"]
