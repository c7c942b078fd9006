def state(client, name="m"):
    """{version: stage} and {alias: version}: the registry as a user sees it."""
    versions = {str(v.version): v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    aliases = {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    return versions, aliases
