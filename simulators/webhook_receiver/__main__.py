"""`python -m simulators.webhook_receiver [--port 8913] [--credentials var/demo_credentials.json]`."""

from simulators.webhook_receiver.receiver import main

main()
