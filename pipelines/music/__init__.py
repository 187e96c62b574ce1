"""Music pipeline (ACE-Step 1.5 architecture, tiny house configurations)."""
