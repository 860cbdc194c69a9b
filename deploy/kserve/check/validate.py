"""Validates KServe and Kubernetes YAML against the types KServe and Kubernetes generate from
their own OpenAPI schemas: the `kserve` SDK's models (the CRDs: ServingRuntime, InferenceService,
ClusterStorageContainer, ...) and the `kubernetes` client's models (Container, Probe, ...).

Usage: python validate.py FILE.yaml...          exits 0 when every document is valid
       python validate.py --refuse FILE.yaml...  exits 0 when every file is refused

Every field must be one the schema defines (a misspelt or misplaced field is an error, as it is
for `kubectl apply --validate=strict`), every value of the schema's type, and every required field
present. The SDKs are imported without their packages' __init__ (which would start a model server
or a cluster client): only the generated model modules are loaded, so the virtualenv needs no
more than the pinned requirements.txt beside this file.
"""

import importlib
import importlib.util
import re
import sys
import types

import yaml


def _bare_package(name):
    """Registers package `name` without running its __init__, so its submodules import alone."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        sys.exit(f"validate.py: the package {name!r} is not installed (see requirements.txt)")
    module = types.ModuleType(name)
    module.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = module


_bare_package("kserve")
_bare_package("kubernetes")
_bare_package("kubernetes.client")
KSERVE = importlib.import_module("kserve.models")
KUBERNETES = importlib.import_module("kubernetes.client.models")


def model_class(type_name):
    """The generated class called `type_name` (e.g. V1alpha1ServingRuntimeSpec, V1Container)."""
    for module in (KSERVE, KUBERNETES):
        cls = getattr(module, type_name, None)
        if cls is not None and hasattr(cls, "openapi_types"):
            return cls
    return None


# Kubernetes' own API groups; their types are in the kubernetes client, KServe's in the kserve SDK.
KUBERNETES_GROUPS = ("", "apps", "batch", "policy", "autoscaling")


def class_for(api_version, kind):
    """The class of a top-level document, from its API group, version and kind, as the SDKs name
    it (serving.kserve.io/v1beta1 InferenceService: V1beta1InferenceService), or None."""
    group, _, version = api_version.rpartition("/")
    if not version:
        return None
    if group == "serving.kserve.io":
        module = KSERVE
    elif group in KUBERNETES_GROUPS or group.endswith(".k8s.io"):
        module = KUBERNETES
    else:
        return None
    cls = getattr(module, version[0].upper() + version[1:] + kind, None)
    return cls if hasattr(cls, "openapi_types") else None


# The generators spell containers two ways: `list[X]` / `dict(str, X)` (kserve, the python-legacy
# generator) and `List[X]` / `Dict[str, X]` (kubernetes, the pydantic one).
LIST = re.compile(r"^(?:list|List)\[(.*)\]$")
DICT = re.compile(r"^(?:dict\(str, ?(.*)\)|Dict\[str, ?(.*)\])$")
OPTIONAL = re.compile(r"^Optional\[(.*)\]$")


class Checker:
    def __init__(self, file):
        self.file = file
        self.errors = []

    def error(self, path, message):
        self.errors.append(f"{self.file}: {path or '<document>'}: {message}")

    def check(self, value, type_name, path):
        """Checks `value` against the generated type `type_name`, recording every error."""
        type_name = type_name.strip()
        optional = OPTIONAL.match(type_name)
        if optional:
            type_name = optional.group(1)
        if value is None:
            # An explicit null is what an absent field is; required fields are checked on the
            # object that holds them.
            return
        listed = LIST.match(type_name)
        if listed:
            if not isinstance(value, list):
                return self.error(path, f"expected a list ({type_name}), found {kind_of(value)}")
            for i, item in enumerate(value):
                self.check(item, listed.group(1), f"{path}[{i}]")
            return
        mapped = DICT.match(type_name)
        if mapped:
            if not isinstance(value, dict):
                return self.error(path, f"expected a map ({type_name}), found {kind_of(value)}")
            for key, item in value.items():
                if not isinstance(key, str):
                    self.error(path, f"map key {key!r} is not a string")
                self.check(item, mapped.group(1) or mapped.group(2), f"{path}.{key}")
            return
        if type_name in ("object", "Any"):
            return  # IntOrString, RawExtension and free-form values: any YAML value
        if type_name in ("str", "StrictStr", "datetime", "date"):
            if not isinstance(value, str):
                self.error(path, f"expected a string, found {kind_of(value)} {value!r}")
            return
        if type_name in ("int", "StrictInt"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.error(path, f"expected an integer, found {kind_of(value)} {value!r}")
            return
        if type_name in ("float", "StrictFloat", "Union[StrictFloat, StrictInt]"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.error(path, f"expected a number, found {kind_of(value)} {value!r}")
            return
        if type_name in ("bool", "StrictBool"):
            if not isinstance(value, bool):
                self.error(path, f"expected true or false, found {kind_of(value)} {value!r}")
            return
        cls = model_class(type_name)
        if cls is None:
            # Never a silent pass: a type this checker cannot resolve is an error of its own.
            return self.error(path, f"the schema's type {type_name!r} is unknown to this checker")
        self.check_object(value, cls, path)

    def check_object(self, value, cls, path):
        if not isinstance(value, dict):
            return self.error(path, f"expected an object ({cls.__name__}), found {kind_of(value)}")
        by_json = {json: attr for attr, json in cls.attribute_map.items()}
        for key, item in value.items():
            attr = by_json.get(key)
            if attr is None:
                known = ", ".join(sorted(by_json))
                self.error(f"{path}.{key}" if path else key,
                           f"unknown field of {cls.__name__} (it has: {known})")
                continue
            self.check(item, cls.openapi_types[attr], f"{path}.{key}" if path else key)
        self.check_required(value, cls, by_json, path)

    def check_required(self, value, cls, by_json, path):
        """Required fields, as the generated class itself enforces them."""
        if hasattr(cls, "model_fields"):
            # pydantic models (kubernetes): a required field is one without a default.
            for name, field in cls.model_fields.items():
                json = cls.attribute_map.get(name, field.alias or name)
                if field.is_required() and value.get(json) is None:
                    self.error(path, f"{cls.__name__} requires the field {json!r}")
            return
        # python-legacy models (kserve): the constructor refuses None for a required field, one
        # field at a time, so each field is tried alone beside placeholders for the others.
        for attr, json in cls.attribute_map.items():
            if value.get(json) is not None:
                continue
            others = {a: PLACEHOLDER for a in cls.attribute_map if a != attr}
            try:
                cls(**others)
            except ValueError as error:
                if f"`{attr}`" in str(error):
                    self.error(path, f"{cls.__name__} requires the field {json!r}")


class _Placeholder:
    """A stand-in that passes the generated setters' checks (they test for None and enums)."""

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __contains__(self, item):
        return True

    def __iter__(self):
        return iter(())


PLACEHOLDER = _Placeholder()


# What a YAML value is, as an error names it; bool first, since a bool is an int in Python.
KINDS = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
         (list, "a list"), (dict, "an object"))


def kind_of(value):
    return next((name for kind, name in KINDS if isinstance(value, kind)), type(value).__name__)


def validate(file):
    """The errors of every document in `file` (empty when all are valid)."""
    checker = Checker(file)
    try:
        with open(file, encoding="utf-8") as stream:
            documents = [d for d in yaml.safe_load_all(stream) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        return [f"{file}: cannot read it as YAML: {error}"]
    if not documents:
        return [f"{file}: holds no document"]
    for index, document in enumerate(documents):
        where = f"document {index + 1}"
        if not isinstance(document, dict):
            checker.error(where, f"expected an object, found {kind_of(document)}")
            continue
        api_version, kind = document.get("apiVersion"), document.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            checker.error(where, "needs apiVersion and kind")
            continue
        cls = class_for(api_version, kind)
        if cls is None:
            checker.error(where, f"no schema for {kind} in {api_version}")
            continue
        checker.check_object(document, cls, "")
    return checker.errors


def main(argv):
    refuse = argv[:1] == ["--refuse"]
    files = argv[1:] if refuse else argv
    if not files:
        sys.exit(__doc__)
    failed = False
    for file in files:
        errors = validate(file)
        if refuse:
            if errors:
                print(f"refused, as it should be: {errors[0]}")
            else:
                print(f"FAIL {file}: accepted, but it was broken on purpose")
                failed = True
        elif errors:
            failed = True
            for error in errors:
                print(f"FAIL {error}")
        else:
            print(f"ok {file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
