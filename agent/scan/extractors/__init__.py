"""One module per format family; each is `fn(data: bytes, ctx: Ctx) -> None`
adding TextChunks to ctx and raising extract.Incomplete when it cannot go on."""
