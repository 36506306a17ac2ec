"""The GitHub adapter: HTTP transport, App authentication and the REST calls the functions make."""
