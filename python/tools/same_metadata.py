"""Checks that two core-metadata files describe the same package: the wheel's METADATA, which
`cargo xtask wheel` writes from pyproject.toml, and the PKG-INFO maturin writes from the same
file for a source build. Both are parsed by PyPA's packaging (requirements and markers
normalised), so quoting and field order do not count; any field that differs is printed.

Usage: python same_metadata.py WHEEL_METADATA SDIST_TAR_GZ
"""

import sys
import tarfile

from packaging.metadata import Metadata

# Fields both builds must agree on; the description's content type is compared without the
# parameters maturin adds (charset, variant).
FIELDS = [
    "name", "version", "summary", "keywords", "author", "license_expression", "license_files",
    "classifiers", "requires_python", "provides_extra", "project_urls", "description",
]


def load(text):
    return Metadata.from_email(text, validate=True)


def pkg_info(sdist):
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO"))
        return archive.extractfile(member).read().decode("utf-8")


def main():
    ours = load(open(sys.argv[1], encoding="utf-8").read())
    maturin = load(pkg_info(sys.argv[2]))
    differences = []
    for field in FIELDS:
        a, b = getattr(ours, field), getattr(maturin, field)
        if field == "description":
            # maturin ends the body with one more newline; trailing newlines render alike.
            a, b = (a or "").rstrip("\n"), (b or "").rstrip("\n")
        if isinstance(a, list) and isinstance(b, list) and field != "keywords":
            a, b = sorted(map(str, a)), sorted(map(str, b))
        if a != b and field == "description":
            differences.append(f"description: wheel {len(a or '')} characters, maturin "
                               f"{len(b or '')}, first difference at "
                               f"{next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))}")
        elif a != b:
            differences.append(f"{field}: wheel {a!r}, maturin {b!r}")
    requirements = [sorted(str(r) for r in (m.requires_dist or [])) for m in (ours, maturin)]
    if requirements[0] != requirements[1]:
        differences.append(f"requires_dist: wheel {requirements[0]}, maturin {requirements[1]}")
    types = [(m.description_content_type or "").split(";")[0] for m in (ours, maturin)]
    if types[0] != types[1]:
        differences.append(f"description_content_type: wheel {types[0]}, maturin {types[1]}")
    if differences:
        print("the wheel's METADATA and maturin's differ:", *differences, sep="\n  ")
        sys.exit(1)
    print(f"    METADATA agrees with maturin's ({len(FIELDS) + 2} fields compared)")


if __name__ == "__main__":
    main()
