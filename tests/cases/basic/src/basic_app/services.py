def create_services() -> dict[str, str]:
    return {"smtp": "localhost"}
