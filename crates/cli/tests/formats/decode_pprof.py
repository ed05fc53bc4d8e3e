"""Decodes a gzipped pprof profile with Google's protobuf library, independently of
leakscope's encoder (prost), and prints what the end-to-end test checks as one JSON document.

The schema is perftools.profiles' profile.proto, declared here as a descriptor (field numbers
and types as upstream's), so that neither protoc nor a copy of the .proto file is needed.

Usage: decode_pprof.py PROFILE.pb.gz
"""

import gzip
import json
import sys

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:
    sys.stderr.write(
        "decode_pprof.py: Google's protobuf library for Python is missing: install Debian's "
        "python3-protobuf (bash .ci/setup.sh installs it)\n"
    )
    sys.exit(3)

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "int64": F.TYPE_INT64,
    "uint64": F.TYPE_UINT64,
    "string": F.TYPE_STRING,
    "bool": F.TYPE_BOOL,
}

# message -> [(field, number, type, repeated)], as in profile.proto.
SCHEMA = {
    "Profile": [
        ("sample_type", 1, "ValueType", True),
        ("sample", 2, "Sample", True),
        ("mapping", 3, "Mapping", True),
        ("location", 4, "Location", True),
        ("function", 5, "Function", True),
        ("string_table", 6, "string", True),
        ("drop_frames", 7, "int64", False),
        ("keep_frames", 8, "int64", False),
        ("time_nanos", 9, "int64", False),
        ("duration_nanos", 10, "int64", False),
        ("period_type", 11, "ValueType", False),
        ("period", 12, "int64", False),
        ("comment", 13, "int64", True),
        ("default_sample_type", 14, "int64", False),
    ],
    "ValueType": [("type", 1, "int64", False), ("unit", 2, "int64", False)],
    "Sample": [
        ("location_id", 1, "uint64", True),
        ("value", 2, "int64", True),
        ("label", 3, "Label", True),
    ],
    "Label": [
        ("key", 1, "int64", False),
        ("str", 2, "int64", False),
        ("num", 3, "int64", False),
        ("num_unit", 4, "int64", False),
    ],
    "Mapping": [
        ("id", 1, "uint64", False),
        ("memory_start", 2, "uint64", False),
        ("memory_limit", 3, "uint64", False),
        ("file_offset", 4, "uint64", False),
        ("filename", 5, "int64", False),
        ("build_id", 6, "int64", False),
        ("has_functions", 7, "bool", False),
        ("has_filenames", 8, "bool", False),
        ("has_line_numbers", 9, "bool", False),
        ("has_inline_frames", 10, "bool", False),
    ],
    "Location": [
        ("id", 1, "uint64", False),
        ("mapping_id", 2, "uint64", False),
        ("address", 3, "uint64", False),
        ("line", 4, "Line", True),
        ("is_folded", 5, "bool", False),
    ],
    "Line": [("function_id", 1, "uint64", False), ("line", 2, "int64", False)],
    "Function": [
        ("id", 1, "uint64", False),
        ("name", 2, "int64", False),
        ("system_name", 3, "int64", False),
        ("filename", 4, "int64", False),
        ("start_line", 5, "int64", False),
    ],
}


def profile_class():
    file = descriptor_pb2.FileDescriptorProto(
        name="profile.proto", package="perftools.profiles", syntax="proto3"
    )
    for message, fields in SCHEMA.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, repeated in fields:
            field = proto.field.add(name=name, number=number)
            field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if kind in SCALARS:
                field.type = SCALARS[kind]
            else:
                field.type = F.TYPE_MESSAGE
                field.type_name = ".perftools.profiles." + kind
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName("perftools.profiles.Profile")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf 4.21 and later
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def main(path):
    with open(path, "rb") as file:
        data = file.read()
    if data[:2] != b"\x1f\x8b":
        sys.exit(f"decode_pprof.py: {path} is not gzipped")
    profile = profile_class()()
    profile.ParseFromString(gzip.decompress(data))
    strings = profile.string_table
    if not strings or strings[0] != "":
        sys.exit("decode_pprof.py: string_table[0] is not the empty string")
    types = [strings[t.type] for t in profile.sample_type]
    functions = {f.id: f for f in profile.function}
    locations = {l.id: l for l in profile.location}
    mappings = {m.id: m for m in profile.mapping}
    totals = dict.fromkeys(types, 0)
    samples = []
    for sample in profile.sample:
        if len(sample.value) != len(types):
            sys.exit("decode_pprof.py: a sample's values do not match the sample types")
        for kind, value in zip(types, sample.value):
            totals[kind] += value
        frames = []
        for location_id in sample.location_id:
            location = locations[location_id]  # every id must name a location
            if location.mapping_id:
                mappings[location.mapping_id]  # and every mapping id a mapping
            for line in location.line:
                function = functions[line.function_id]
                frames.append(
                    {
                        "function": strings[function.name],
                        "file": strings[function.filename],
                        "line": line.line,
                    }
                )
        labels = {}
        for label in sample.label:
            labels[strings[label.key]] = strings[label.str] if label.str else label.num
        samples.append(
            {"values": dict(zip(types, sample.value)), "frames": frames, "labels": labels}
        )
    json.dump(
        {
            "sample_types": [[strings[t.type], strings[t.unit]] for t in profile.sample_type],
            "default_sample_type": strings[profile.default_sample_type],
            "period_type": [
                strings[profile.period_type.type],
                strings[profile.period_type.unit],
            ],
            "period": profile.period,
            "time_nanos": profile.time_nanos,
            "duration_nanos": profile.duration_nanos,
            "comments": [strings[c] for c in profile.comment],
            "mappings": [strings[m.filename] for m in profile.mapping],
            "totals": totals,
            "samples": samples,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main(sys.argv[1])
