"""Who people are: organisations by credit code, real-name identity, external sign-in.

* :mod:`sandbox.identity.organisations` — the operator's register of
  organisations and their members, and natural persons' verified identity
  (Wuxi Art.6; Rizhao Art.10);
* :mod:`sandbox.identity.oidc` — sign-in through an external OpenID Connect
  provider, for linked accounts only (Rizhao Art.29).
"""
