"""One package per AWS service Lamina serves; each parses its protocol, calls the control plane, serialises."""
