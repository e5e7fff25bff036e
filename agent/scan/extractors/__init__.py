"""One module per format family; each is `fn(data: bytes, ctx: Ctx) -> None`
adding TextChunks to ctx and raising base.Incomplete when it cannot go on."""
