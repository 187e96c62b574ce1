"""Control front-ends of the parameter registry: MIDI, OSC, mappings, tempo sync."""
