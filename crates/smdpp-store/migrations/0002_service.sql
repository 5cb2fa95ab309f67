-- smdpp-store schema, version 2: tables owned by smdpp-service.
-- Same placeholders as 0001 ({{BLOB}}).

-- Display metadata of a profile (StoreMetadataRequest, SGP.22 section 5.5.3).
CREATE TABLE service_profile_metadata (
    iccid                 TEXT NOT NULL REFERENCES profiles (iccid),
    service_provider_name TEXT NOT NULL,
    profile_name          TEXT NOT NULL,
    profile_class         BIGINT NULL,
    CONSTRAINT service_profile_metadata_pk PRIMARY KEY (iccid)
);

-- The last BPP built for a profile, bound to one otPK.EUICC (SGP.22 section 3.1.3.2,
-- re-use on retry). Ciphertext only: the one-time private key is never stored.
CREATE TABLE service_bpp_cache (
    iccid          TEXT NOT NULL REFERENCES profiles (iccid),
    eid            TEXT NOT NULL,
    euicc_otpk     {{BLOB}} NOT NULL,
    transaction_id TEXT NOT NULL,
    bpp            {{BLOB}} NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT service_bpp_cache_pk PRIMARY KEY (iccid)
);
