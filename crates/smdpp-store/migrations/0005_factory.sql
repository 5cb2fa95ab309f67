-- smdpp-store schema, version 5: the profile factory (profile types, imported subscriber
-- secrets, the vault's wrapped data-encryption keys). Same placeholders as 0001.

-- Data-encryption keys, wrapped by the key-encryption key `kek_id` (never stored here).
CREATE TABLE vault_deks (
    dek_id     BIGINT NOT NULL,
    kek_id     TEXT NOT NULL,
    wrapped    {{BLOB}} NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT vault_deks_pk PRIMARY KEY (dek_id)
);

-- A profile type: the SAIP template the UPP is generated from, the profile metadata sent in
-- StoreMetadataRequest (SGP.22 section 5.5.3) and the limits copied to each profile of the
-- type. `template` is the template's TOML source (saip::TemplateSource), sealed like the
-- secrets (a template may hold keys every profile of the type shares), so a type keeps
-- producing the same packages whatever the server binary ships.
CREATE TABLE profile_types (
    name                   TEXT NOT NULL,
    template               {{BLOB}} NOT NULL,
    service_provider_name  TEXT NOT NULL,
    profile_name           TEXT NOT NULL,
    profile_class          BIGINT NULL,
    icon_type              BIGINT NULL,
    icon                   {{BLOB}} NULL,
    notification_events    BIGINT NOT NULL,
    ppr_bits               BIGINT NULL,
    cc_attempt_limit       BIGINT NULL,
    download_attempt_limit BIGINT NULL,
    created_at             BIGINT NOT NULL,
    CONSTRAINT profile_types_pk PRIMARY KEY (name)
);

-- Subscriber values of an imported profile. `imsi` is kept in the clear (it is an
-- identifier, and must be unique); everything secret (Ki, OPc/OP, PINs, PUKs, ADM1) is one
-- AES-256-GCM sealed blob (smdpp-vault) under the data-encryption key `dek_id`.
CREATE TABLE profile_secrets (
    iccid  TEXT NOT NULL REFERENCES profiles (iccid),
    imsi   TEXT NOT NULL,
    dek_id BIGINT NOT NULL,
    sealed {{BLOB}} NOT NULL,
    CONSTRAINT profile_secrets_pk PRIMARY KEY (iccid),
    CONSTRAINT profile_secrets_imsi_uq UNIQUE (imsi),
    -- A DEK cannot be deleted while a record uses it, and a record cannot be stored under a
    -- deleted DEK (a process that started before a rotation and a retirement).
    CONSTRAINT profile_secrets_dek_fk FOREIGN KEY (dek_id) REFERENCES vault_deks (dek_id)
);

CREATE INDEX profile_secrets_dek_idx ON profile_secrets (dek_id, iccid);

