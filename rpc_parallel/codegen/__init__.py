"""rpcpar codegen: worker declarations -> schema model -> descriptors -> ``.proto`` and stubs."""
