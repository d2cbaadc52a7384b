from tests.marketplace.conftest import acme_dev, acme_prod, catalog  # noqa: F401 (shared fixtures)
