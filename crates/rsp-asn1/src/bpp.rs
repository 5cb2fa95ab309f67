//! The Bound Profile Package (SGP.22 section 2.5.5) and the ES8+ functions it carries.
