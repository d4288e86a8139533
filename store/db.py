"""Database engine and sessions."""

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the process's engine; one per process, closed on exit."""
    return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a factory of SQLModel sessions that keep objects after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
