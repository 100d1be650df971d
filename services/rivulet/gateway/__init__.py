"""The voice-assistant web app and its gateway: one browser WebSocket per conversation, bridged to one
`rivulet.dialog.v1.Dialog/Converse` stream (PROTOCOL.md). No dialog logic lives here."""
