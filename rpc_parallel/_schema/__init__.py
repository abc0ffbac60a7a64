"""The schema layer: worker declarations -> schema model -> protobuf descriptors.

``file_spec(module)`` builds (once) the model of every worker type a module declares: services,
methods, messages with numbered fields, enums and fingerprints (``_build``, over the model types
of ``_model``); ``file_descriptor(spec)`` turns it into the ``FileDescriptorProto`` protoc would
make of the rendered ``.proto``. Everything else (the wire codec, the ``.proto`` text, the typed
clients) is derived from this model; this layer imports only the value layer.
"""

from ._build import (
    MAIN_MODULES as MAIN_MODULES,
    file_spec as file_spec,
    module_name as module_name,
    service_spec as service_spec,
)
from ._descriptor import file_descriptor as file_descriptor, map_entry_name as map_entry_name
from ._model import (
    SCALARS as SCALARS,
    UNION_ONEOF as UNION_ONEOF,
    EnumRef as EnumRef,
    EnumSpec as EnumSpec,
    FieldSpec as FieldSpec,
    FileSpec as FileSpec,
    ListT as ListT,
    MapT as MapT,
    MessageRef as MessageRef,
    MessageSpec as MessageSpec,
    MethodSpec as MethodSpec,
    NoneT as NoneT,
    OptionalT as OptionalT,
    ParamInfo as ParamInfo,
    PickledT as PickledT,
    Scalar as Scalar,
    ServiceSpec as ServiceSpec,
    Slot as Slot,
    TupleT as TupleT,
    TypeRef as TypeRef,
    UnionT as UnionT,
    camel as camel,
    describe as describe,
    differing_functions as differing_functions,
    fingerprints as fingerprints,
    is_basic as is_basic,
    json_name as json_name,
    slot_of as slot_of,
    type_label as type_label,
    union_case as union_case,
    upper_snake as upper_snake,
    wrapper_field as wrapper_field,
    wrapper_fields as wrapper_fields,
    wrappers_for as wrappers_for,
)
