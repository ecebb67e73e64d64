"""moto's server with DynamoDB requests applied one at a time.

moto answers each HTTP request on its own thread, and its TransactWriteItems
backs out a cancelled transaction by restoring a copy of every table it
touched, taken before it began: a transaction cancelled while another
request committed on a second thread undoes that commit. DynamoDB itself
isolates transactions (serializable against other writes), so here every
DynamoDB action holds one lock; SQS (whose long polls wait) stays
concurrent.

usage: moto_server.py -H HOST -p PORT   (the arguments of moto_server)
"""
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_one_at_a_time = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _one_at_a_time:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
