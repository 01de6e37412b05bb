"""``imagegen.gateway.v1``: the gateway's contract (generated code beside gateway.proto).

``gateway.proto`` imports ``google/longrunning/operations.proto``, which protoc maps to the
module ``google.longrunning.operations_pb2``. In ``googleapis-common-protos`` that module
also loads the Operations gRPC stubs, and with them grpc; the messages alone (the same
registered file) are ``google.longrunning.operations_proto_pb2``. It stands in here, so
code that needs only the messages (the command-line client's ``--help``) loads no grpc.
The stubs stay where they are, in ``google.longrunning.operations_pb2_grpc``.
"""

import sys

from google.longrunning import operations_proto_pb2

sys.modules.setdefault("google.longrunning.operations_pb2", operations_proto_pb2)
