"""Video rooms of consult sessions: the server is a WebRTC peer (aiortc) of every participant and relays each
one's audio and video to the others (docs/consult.md "Video rooms")."""
