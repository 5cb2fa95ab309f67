"""Decode each Profile Element of UPPs produced by the saip crate with asn1tools.

stdin: {"asn": "<path to PE_Definitions-3.3.1.asn>", "upps": [{"name": ..., "pes": [hex, ...]}]}
stdout: {"upps": [{"name": ..., "pes": [{"type", "same", "error"}], "values": {...}}]}

Each PE is decoded as `ProfileElement` and re-encoded; `same` says whether the re-encoding
is byte-identical. Re-encoding uses check_types=False: the schema gives `sqnInit` (a
SEQUENCE OF) a DEFAULT written as an OCTET STRING value, which asn1tools substitutes when
the component is absent and then refuses in its type check.
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
    out = []
    for upp in req["upps"]:
        pes = []
        values = {"header_iccid": None, "ef_iccid": None, "ef_imsi": None, "aka": [], "pins": []}
        for h in upp["pes"]:
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
            elif name == "mf":
                values["ef_iccid"] = content(value["ef-iccid"])
            elif name == "usim" and values["ef_imsi"] is None:
                values["ef_imsi"] = content(value["ef-imsi"])
            elif name == "akaParameter":
                kind, algo = value["algoConfiguration"]
                if kind == "algoParameter":
                    values["aka"].append({"key": algo["key"].hex(), "opc": algo["opc"].hex()})
            elif name == "pinCodes":
                kind, cfg = value["pinCodes"]
                if kind == "pinconfig":
                    for c in cfg:
                        values["pins"].append([c["keyReference"], c["pinValue"].hex()])
        out.append({"name": upp["name"], "pes": pes, "values": values})
    json.dump({"upps": out}, sys.stdout)


if __name__ == "__main__":
    main()
