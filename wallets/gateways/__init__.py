"""Payment gateways: the interface (base), the registry, and one module per gateway."""
