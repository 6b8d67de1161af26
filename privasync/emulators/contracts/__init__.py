"""What each vendor publishes about the calls privasync makes or receives, written down as
pydantic models: field names, types, enums, required fields, limits, status codes and error
bodies, each module naming the specification (and version) it was read from.

The emulators validate every request against these and answer a refusal as the vendor
does. Connectors never import them (an import-linter contract holds that): the emulator
stays an independent witness, so a connector and its emulator cannot agree with each other
and not with the vendor.
"""
