"""The software package catalog: packages, package versions and their
lifecycle (packages.py, versions.py, model.py), the package configuration,
and what the catalog adds to jobs: destinationPackageVersions checked at
job creation and the reserved `$package` shadow updated when an execution
succeeds (deployments.py, wired through localiot.services.hooks).
"""
