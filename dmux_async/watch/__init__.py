"""``dmux watch``: the supervisor that freezes a container the moment its pane is gone."""
