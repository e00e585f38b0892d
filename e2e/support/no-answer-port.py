"""A TCP port on loopback that never answers: a listener with a full accept queue that
never accepts, so further connection attempts are silently dropped and time out (what a
firewall that drops packets looks like). Prints the port, then waits until killed."""
import socket
import time

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(0)
port = listener.getsockname()[1]

# Fill the accept queue (backlog 0 still queues one connection, or two on some kernels).
fillers = []
for _ in range(4):
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler.setblocking(False)
    try:
        filler.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fillers.append(filler)
time.sleep(0.5)

print(port, flush=True)
while True:
    time.sleep(3600)
