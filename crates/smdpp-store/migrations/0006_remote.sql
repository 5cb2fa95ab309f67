-- smdpp-store schema, version 6: the life of a profile after installation (issue #10).
-- Same placeholders as 0001 ({{BLOB}}, {{AUTO_ID}}).

-- What happens to a profile of this type once its eUICC reports it deleted: `retire`
-- (Unavailable, the ICCID is never handed out again) or `reuse` (Available for a new order,
-- EID binding, counters, MatchingID and cached BPP cleared).
ALTER TABLE profile_types ADD COLUMN on_delete TEXT NOT NULL DEFAULT 'retire';

-- PEM bundle of the CA certificates that sign this operator's callback TLS certificate;
-- NULL: the system's trust roots (plus the server-wide SMDPP_OUTBOX_CA_FILE, if set).
ALTER TABLE operators ADD COLUMN callback_ca TEXT NULL;

-- The eUICC's own account of an installed profile: the highest notification seqNumber
-- applied to the profile's state (seqNumbers grow per eUICC, SGP.22 section 5.7.1: an older
-- notification that arrives after a newer one must not roll the state back, a duplicate is
-- applied once).
CREATE TABLE profile_device (
    iccid      TEXT NOT NULL REFERENCES profiles (iccid),
    eid        TEXT NOT NULL,
    last_seq   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT profile_device_pk PRIMARY KEY (iccid)
);

-- What an eUICC announced in its last authenticated session (EUICCInfo2, section 4.3):
-- its highest SVN and whether it supports Remote Profile Management (v3 rpmSupport).
CREATE TABLE euicc_capabilities (
    eid         TEXT NOT NULL,
    svn         TEXT NOT NULL,
    rpm_support BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT euicc_capabilities_pk PRIMARY KEY (eid)
);

-- Server-wide facts recorded by `serve` for the other commands (e.g. `public_address`, the
-- SM-DP+ address this data directory is served at, printed in Activation Codes).
CREATE TABLE server_settings (
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT server_settings_pk PRIMARY KEY (name)
);
