"""The catalog: papers you have not noted, embedded once at scale (locally or on Ray), searched
with IVF-PQ and ranked against your notes by `recommend`."""
