"""Decode the PEs of a UPP built from the project's template with asn1tools.

stdin: {"asn": "<path to PE_Definitions-3.3.1.asn>", "pes": [hex, ...]}
stdout: {"pes": [{"type", "same", "error"}], "values": {...}}

Each PE is decoded as `ProfileElement` and re-encoded (check_types=False, see
pe_interop.py: the schema's ill-typed DEFAULT of `sqnInit`); `same` says whether the
re-encoding is byte-identical. `values` holds the personalized fields found by name.
"""
import json
import sys

import asn1tools


def content(file_items):
    for kind, value in file_items:
        if kind == "fillFileContent":
            return value.hex()
    return None


def main():
    req = json.load(sys.stdin)
    spec = asn1tools.compile_files([req["asn"]], "der")
    pes = []
    values = {"files": {}, "aka": [], "pins": [], "puks": [], "template_ids": {}}
    for h in req["pes"]:
        der = bytes.fromhex(h)
        try:
            name, value = spec.decode("ProfileElement", der)
            again = spec.encode("ProfileElement", (name, value), check_types=False)
            pes.append({"type": name, "same": again == der, "error": None})
        except Exception as e:  # reported to the Rust side
            pes.append({"type": None, "same": False, "error": repr(e)})
            continue
        if name == "header":
            values["header_iccid"] = value["iccid"].hex()
            values["services"] = sorted(value["eUICC-Mandatory-services"].keys())
        elif name in ("mf", "usim", "opt-usim", "isim"):
            values["template_ids"][name] = value["templateID"]
            for field, v in value.items():
                if field.startswith("ef-"):
                    values["files"][name + "/" + field] = content(v)
        elif name == "akaParameter":
            kind, algo = value["algoConfiguration"]
            values["aka"].append({"algorithm": algo["algorithmID"], "key": algo["key"].hex(), "opc": algo["opc"].hex()})
        elif name == "pinCodes":
            kind, cfg = value["pinCodes"]
            for c in cfg:
                values["pins"].append([c["keyReference"], c["pinValue"].hex()])
        elif name == "pukCodes":
            for c in value["pukCodes"]:
                values["puks"].append([c["keyReference"], c["pukValue"].hex()])
        elif name == "securityDomain":
            values["sd_instance_aid"] = value["instance"]["instanceAID"].hex()
    json.dump({"pes": pes, "values": values}, sys.stdout)


if __name__ == "__main__":
    main()
