#! /usr/bin/env python3
# The seed's Django app's call to its match server (seed 000,
# game/consumers/multiplayer/index.py, create_player), unchanged but for
# where the host, port and players come from: argv[1] is HOST:PORT, then
# one line per player on stdin: score, uuid, username, photo, channel_name
# separated by tabs. It prints each add_player's answer, or the error.
import sys

from thrift import Thrift
from thrift.transport import TSocket
from thrift.transport import TTransport
from thrift.protocol import TBinaryProtocol

from match_server.match_service import Match

host, port = sys.argv[1].rsplit(':', 1)

for line in sys.stdin:
    score, uuid, username, photo, channel_name = line.rstrip('\n').split('\t')
    # Make socket
    transport = TSocket.TSocket(host, int(port))
    # Buffering is critical. Raw sockets are very slow
    transport = TTransport.TBufferedTransport(transport)

    # Wrap in a protocol
    protocol = TBinaryProtocol.TBinaryProtocol(transport)

    # Create a client to use the protocol encoder
    client = Match.Client(protocol)

    # Connect!
    transport.open()

    try:
        print(client.add_player(int(score), uuid, username, photo, channel_name))
    except Thrift.TException as e:
        print('error: %s' % e)

    # Close!
    transport.close()
    sys.stdout.flush()
