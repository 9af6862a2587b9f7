"""The platform's ComponentResources, one per module; ``ai_platform.AiPlatform`` composes them."""
