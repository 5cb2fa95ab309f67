-- smdpp-store schema, version 8: the operator's systems (issue #11): profiles generated on
-- demand, the core network (HLR/HSS) subscribers are provisioned in, and signed webhooks for
-- billing and provisioning. Same placeholders as 0001 ({{BLOB}}, {{AUTO_ID}}).

-- A profile type that creates its profiles on demand. `policy` is JSON without secrets (the
-- first ICCID body and IMSI of the range, the MNC length, PIN lengths, whether OPc is drawn
-- at random or derived from the operator's OP). The OP, when there is one, is sealed with
-- the vault (`op_sealed` under `op_dek_id`). Profile number `i` of the range (0-based) gets
-- ICCID body `first + i` (plus its Luhn digit) and IMSI `first + i`; `next_index` is taken by
-- one conditional UPDATE (`next_index < size`), so two claimers (or nodes) never get the same
-- index, and the range is exhausted when `next_index = size`.
CREATE TABLE profile_generators (
    profile_type TEXT NOT NULL REFERENCES profile_types (name),
    policy       TEXT NOT NULL,
    op_dek_id    BIGINT NULL,
    op_sealed    {{BLOB}} NULL,
    next_index   BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT profile_generators_pk PRIMARY KEY (profile_type)
);

-- A core network the server provisions subscribers in. `kind` names the connector
-- (`osmo-hlr`: its CTRL interface at `address`, host:port).
CREATE TABLE core_networks (
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    address    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT core_networks_pk PRIMARY KEY (name)
);

-- Which core network a profile type's subscribers live in, when they are provisioned
-- (`released`: at ConfirmOrder/ReleaseProfile; `installed`: once the eUICC reported the
-- installation) and what deactivation or deletion does (`delete` the subscriber, or `block`
-- it: CS/PS disabled and its authentication data removed).
CREATE TABLE type_core_network (
    profile_type  TEXT NOT NULL REFERENCES profile_types (name),
    core_network  TEXT NOT NULL REFERENCES core_networks (name),
    provision_at  TEXT NOT NULL,
    on_deactivate TEXT NOT NULL,
    CONSTRAINT type_core_network_pk PRIMARY KEY (profile_type)
);

-- Signed webhooks for billing and provisioning. `events` is `*` or a comma-separated list of
-- event names (created, released, installed, enabled, disabled, deleted, deactivated);
-- `operator_id` (when set) limits the webhook to that operator's profiles. The HMAC secret is
-- sealed with the vault; `ca` is an optional PEM bundle trusted for the endpoint's TLS
-- certificate (else the system roots and SMDPP_OUTBOX_CA_FILE).
CREATE TABLE webhooks (
    id            TEXT NOT NULL,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    operator_id   TEXT NULL,
    dek_id        BIGINT NOT NULL,
    secret_sealed {{BLOB}} NOT NULL,
    ca            TEXT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT webhooks_pk PRIMARY KEY (id)
);
