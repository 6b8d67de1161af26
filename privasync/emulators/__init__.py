"""Loopback emulators of the vendors privasync speaks to (HubSpot, Salesforce, Mailchimp, a
signed-webhook partner, an OpenDSR processor), on Starlette and uvicorn, each holding every
request to the vendor's published contract in ``contracts``. Only the demo harness and the
tests run them."""
